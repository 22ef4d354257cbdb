#!/usr/bin/env python3
"""Checks that docs/reference.md names everything the code defines:

- every config key the parser accepts (the key lists of src/config/config.cpp), in the
  "Config keys" table;
- every metric src/obs/metrics.cpp registers, in the metrics table;
- every flag src/cli/app.cpp and src/sim/main.cpp define, in backquotes.

A key, metric or flag added to the code without a line in the reference fails this test with
its name. (The other way round, the reference may describe what is still being built.)

Usage: check-reference.py SOURCE_DIR
"""

import os
import re
import sys


def read(src, path):
    with open(os.path.join(src, path), encoding="utf-8") as f:
        return f.read()


def config_keys(text):
    """Full key names from for_each_key(node, "section", {"a", "b"}, ...) calls."""
    keys = set()
    for m in re.finditer(r'for_each_key\(\s*\w+\s*,\s*"([^"]+)"\s*,\s*\{([^}]*)\}', text):
        section = m.group(1)
        names = re.findall(r'"(\w+)"', m.group(2))
        if section == "the config file":  # the top-level sections themselves
            continue
        keys.update(section + "." + n for n in names)
    # A section whose keys are maps of their own (auth.oauth2) is named by its keys.
    return {k for k in keys if not any(o.startswith(k + ".") for o in keys)}


def section(text, heading):
    """The text under a Markdown heading, up to the next heading of any level."""
    m = re.search(r"^#+ %s\s*$(.*?)(?=^#)" % re.escape(heading), text + "\n#", re.M | re.S)
    return m.group(1) if m else ""


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    ref = read(src, "docs/reference.md")
    missing = []

    keys = config_keys(read(src, "src/config/config.cpp"))
    table = section(ref, "Config keys")
    for k in sorted(keys):
        if "| `%s` |" % k not in table:
            missing.append("config key %s (docs/reference.md, Config keys)" % k)

    metrics = set(re.findall(r'\.Name\("(thingsync_\w+)"\)', read(src, "src/obs/metrics.cpp")))
    table = section(ref, "Metrics and health endpoints")
    for name in sorted(metrics):
        if "| `%s` |" % name not in table:
            missing.append("metric %s (docs/reference.md, Metrics and health endpoints)" % name)

    for path in ("src/cli/app.cpp", "src/sim/main.cpp"):
        flags = set(re.findall(r'add_(?:option|flag)\(\s*"(--[\w-]+)', read(src, path)))
        flags.update(re.findall(r'set_version_flag\(\s*"(--[\w-]+)', read(src, path)))
        for flag in sorted(flags):
            if not re.search(r"`%s[ `=]" % re.escape(flag), ref):
                missing.append("flag %s of %s (docs/reference.md)" % (flag, path))

    print("%d config keys, %d metrics checked" % (len(keys), len(metrics)))
    for m in missing:
        print("FAIL: not in the reference: " + m)
    if missing:
        sys.exit(1)
    print("all named")


if __name__ == "__main__":
    main()
