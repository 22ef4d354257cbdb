#!/usr/bin/env python3
"""Makes the man pages from docs/reference.md, the one source of the reference.

A part of the Markdown that opens with a comment line

    <!-- man: PAGE SECTION -->            e.g. <!-- man: thingsync.1 EXIT STATUS -->
    <!-- man: PAGE SECTION; PAGE SECTION -->   the same part in two pages

becomes SECTION of PAGE, up to the next such comment, a <!-- /man --> line or the next "#"
or "##" heading. A comment whose text goes on below its first line holds raw roff instead
(NAME and SEE ALSO lines, which the Markdown reader does not need to see):

    <!-- man: thingsync.1 NAME
    thingsync \\- ...
    -->

The Markdown understood is what docs/reference.md uses: paragraphs, "- " lists, tables (each
row becomes a tagged paragraph: the first cell is the tag), fenced code blocks, "###"
headings (subsections), `code`, **bold**, *italic* and [links](...). Anything else is an
error, so that a page never silently loses text.

Usage: gen-man.py SOURCE OUT_DIR [--version V] [--date YYYY-MM-DD]
Writes OUT_DIR/PAGE for every page named in SOURCE. Standard library only.
"""

import argparse
import datetime
import os
import re
import sys

MARKER = re.compile(r"^<!--\s*man:\s*(.*?)\s*(-->)?\s*$")
END = re.compile(r"^<!--\s*/man\s*-->\s*$")
COMMENT = re.compile(r"^<!--.*-->\s*$")

# Sections in the order man-pages(7) gives them; others go between OPTIONS and EXIT STATUS
# in the order the source first names them.
HEAD = ["NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "OPTIONS"]
TAIL = ["EXIT STATUS", "ENVIRONMENT", "FILES", "EXAMPLES", "SEE ALSO"]

MANUALS = {"1": "User Commands", "5": "File Formats"}

# Characters outside ASCII, as roff escapes that groff and mandoc both know.
GLYPHS = {
    "\u2014": r"\(em", "\u2013": r"\(en", "\u2192": r"\(->", "\u2190": r"\(<-",
    "\u2265": r"\(>=", "\u2264": r"\(<=", "\u00d7": r"\(mu", "\u00b5": r"\(mc",
    "\u2018": r"\(oq", "\u2019": r"\(cq", "\u201c": r"\(lq", "\u201d": r"\(rq",
    "\u00b7": r"\(pc", "\u2026": r"\&...", "\u00a0": r"\~",
}


class SourceError(Exception):
    pass


def escape(text, code=False):
    """Text for roff: backslashes escaped, non-ASCII as glyph escapes, and in code every '-'
    a real minus (so that a copied flag works)."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append(r"\e")
        elif ch == "-" and code:
            out.append(r"\-")
        elif ord(ch) < 128:
            out.append(ch)
        else:
            out.append(GLYPHS.get(ch, r"\[u%04X]" % ord(ch)))
    return "".join(out)


def inline(text):
    """Markdown inline markup to roff font changes."""
    text = text.replace(r"\|", "|")
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) >= 2:
            out.append(r"\fB" + escape(part[1:-1], code=True) + r"\fR")
            continue
        s = escape(part)
        s = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", s)
        s = re.sub(r"\*\*([^*]+)\*\*", r"\\fB\1\\fR", s)
        s = re.sub(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])", r"\\fI\1\\fR", s)
        out.append(s)
    return "".join(out)


def plain(text):
    """A heading's text: markup dropped."""
    return escape(re.sub(r"[`*]", "", text))


def roff_line(s):
    """A text line that roff must not take for a request."""
    return "\\&" + s if s[:1] in (".", "'") else s


def wrap(text, width=79):
    """Filled text as roff lines of at most `width` bytes (where the words allow), none of
    them taken for a request."""
    lines, cur = [], ""
    for word in text.split():
        if cur and len(cur) + 1 + len(word) > width:
            lines.append(roff_line(cur))
            cur = word
        else:
            cur = cur + " " + word if cur else word
    if cur:
        lines.append(roff_line(cur))
    return lines


def split_row(line):
    cells = re.split(r"(?<!\\)\|", line.strip())
    return [c.strip() for c in cells[1:-1]]


def convert(lines, where):
    """One part's Markdown lines to roff lines."""
    out = []
    fresh = True  # right after .SH/.SS: no .PP needed
    para = False  # inside a paragraph or list item
    i = 0

    def start_paragraph():
        nonlocal fresh, para
        if not fresh:
            out.append(".PP")
        fresh = False
        para = True

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        lineno = where + i
        if not stripped:
            para = False
            i += 1
            continue
        if COMMENT.match(stripped):
            i += 1
            continue
        if stripped.startswith("```"):
            end = i + 1
            while end < len(lines) and not lines[end].strip().startswith("```"):
                end += 1
            if end == len(lines):
                raise SourceError("line %d: code block never closed" % lineno)
            if not fresh:
                out.append(".PP")
            out += [".RS 4", ".nf"]
            for code in lines[i + 1:end]:
                out.append(roff_line(escape(code.rstrip(), code=True)) or "\\&")
            out += [".fi", ".RE"]
            fresh = False
            para = False
            i = end + 1
            continue
        heading = re.match(r"^(#{3,4})\s+(.*)$", stripped)
        if heading:
            if len(heading.group(1)) == 3:
                out.append('.SS "%s"' % plain(heading.group(2)))
                fresh = True
            else:
                start_paragraph()
                out.append(r"\fB%s\fR" % plain(heading.group(2)))
            para = False
            i += 1
            continue
        if stripped.startswith("#"):
            raise SourceError("line %d: heading level not supported in a man part" % lineno)
        if stripped.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(split_row(lines[i]))
                i += 1
            if len(rows) < 2 or not all(re.fullmatch(r":?-+:?", c) for c in rows[1]):
                raise SourceError("line %d: a table needs a header and a separator row" % lineno)
            header = [h.lower() for h in rows[0]]
            for row in rows[2:]:
                if len(row) != len(header):
                    raise SourceError("line %d: table row with %d cells, header has %d"
                                      % (lineno, len(row), len(header)))
                out += [".TP", roff_line(inline(row[0]))]
                middle = []
                for name, cell in zip(header[1:-1], row[1:-1]):
                    if not cell:
                        continue
                    label = name + ": " if name in ("default", "example", "labels") else ""
                    middle.append(label + inline(cell))
                if middle:
                    out.extend(wrap("; ".join(middle)))
                    if len(row) > 1 and row[-1]:
                        out.append(".br")
                if len(row) > 1 and row[-1]:
                    out.extend(wrap(inline(row[-1])))
            fresh = False
            para = False
            continue
        if stripped.startswith("- "):
            text = [inline(stripped[2:])]
            fresh = False
            para = True
            i += 1
            while i < len(lines) and lines[i].startswith("  ") and lines[i].strip() \
                    and not lines[i].strip().startswith("- "):
                text.append(inline(lines[i].strip()))
                i += 1
            out.append(".IP \\(bu 2")
            out.extend(wrap(" ".join(text)))
            continue
        if not para:
            start_paragraph()
        text = []
        while i < len(lines) and lines[i].strip() and not re.match(r"^\s*([-|#]\s|```|<!--|\|)",
                                                                   lines[i]):
            text.append(inline(lines[i].strip()))
            i += 1
        out.extend(wrap(" ".join(text)))
    return out


def parse(source_lines):
    """{page: {section: [roff lines]}} and the order sections were first named in."""
    pages = {}
    order = []
    i = 0
    n = len(source_lines)
    while i < n:
        m = MARKER.match(source_lines[i])
        if not m:
            i += 1
            continue
        targets = []
        for target in m.group(1).split(";"):
            bits = target.strip().split(None, 1)
            if len(bits) != 2 or not re.fullmatch(r"[\w.-]+\.[1-9]", bits[0]):
                raise SourceError("line %d: expected <!-- man: PAGE.N SECTION -->" % (i + 1))
            targets.append((bits[0], bits[1].upper()))
        if m.group(2):  # a Markdown part
            start = i + 1
            i += 1
            while i < n and not (MARKER.match(source_lines[i]) or END.match(source_lines[i])
                                 or re.match(r"^#{1,2}\s", source_lines[i])):
                i += 1
            body = convert(source_lines[start:i], start + 1)
        else:  # raw roff up to "-->"
            start = i + 1
            i += 1
            while i < n and source_lines[i].strip() != "-->":
                i += 1
            if i == n:
                raise SourceError("line %d: man comment never closed" % start)
            body = [line.rstrip() for line in source_lines[start:i] if line.strip()]
            i += 1
        for page, section in targets:
            sections = pages.setdefault(page, {})
            sections.setdefault(section, []).extend(body)
            if section not in order:
                order.append(section)
    return pages, order


def render(page, sections, order, version, date):
    name, number = page.rsplit(".", 1)
    missing = [s for s in ("NAME",) if s not in sections]
    if missing:
        raise SourceError("%s has no %s section" % (page, ", ".join(missing)))
    named = [s for s in HEAD if s in sections]
    named += [s for s in order if s in sections and s not in HEAD and s not in TAIL]
    named += [s for s in TAIL if s in sections]
    out = [
        '.\\" Made by scripts/gen-man.py from docs/reference.md: edit that, not this.',
        '.TH "%s" "%s" "%s" "thingsync %s" "%s"'
        % (escape(name.upper()), number, date, version, MANUALS.get(number, "")),
        ".nh",  # no hyphenation: a flag or key split at the margin cannot be copied
        ".ad l",
    ]
    for section in named:
        out.append('.SH "%s"' % section)
        out.extend(sections[section])
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source")
    ap.add_argument("out_dir")
    ap.add_argument("--version", default="")
    ap.add_argument("--date", default=None,
                    help="YYYY-MM-DD; default: SOURCE_DATE_EPOCH, else the source's mtime")
    args = ap.parse_args()
    date = args.date
    if not date:
        stamp = os.environ.get("SOURCE_DATE_EPOCH") or os.path.getmtime(args.source)
        date = datetime.datetime.fromtimestamp(int(float(stamp)), datetime.timezone.utc) \
            .strftime("%Y-%m-%d")
    with open(args.source, encoding="utf-8") as f:
        lines = f.read().splitlines()
    try:
        pages, order = parse(lines)
    except SourceError as e:
        sys.exit("gen-man.py: %s: %s" % (args.source, e))
    if not pages:
        sys.exit("gen-man.py: %s: no <!-- man: ... --> parts" % args.source)
    os.makedirs(args.out_dir, exist_ok=True)
    for page, sections in sorted(pages.items()):
        text = render(page, sections, order, args.version, date)
        path = os.path.join(args.out_dir, page)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(text)
        os.replace(tmp, path)


if __name__ == "__main__":
    main()
