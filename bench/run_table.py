#!/usr/bin/env python3
"""The table of bench/run.sh: reads the log directory it wrote and prints one markdown table,
figure | target | measured | pass/fail, under a header (commit, date, build, nproc, load).

  bench/run_table.py LOGDIR [--out FILE]

LOGDIR holds `meta` (key=value lines) and, per benchmark NAME, NAME.status (`na REASON`, or
`rc CODE seconds S limit L`), NAME.cmd and NAME.log. Each benchmark has a parser that knows its
output and the figures it should give: a figure the log lacks is `n/a` when the benchmark
exited 0 or was not run (a build without that feature), and FAIL when it crashed or timed out.

Exit code: 0 when every row with a target passes, 1 otherwise. In --quick mode (meta
mode=quick) the sizes are too small for the targets: only a crash or a timeout gives 1.
"""

import argparse
import os
import re
import sys

# Benchmarks in the order run.sh runs them.
BENCHES = ["load", "plan", "service", "wrk", "api", "apply", "aimd", "fleet"]


class Target:
    """op is one of < <= > >= = within (|value| <= number)."""

    def __init__(self, op, number, unit="", text=None):
        self.op, self.number, self.unit = op, number, unit
        sep = "" if unit.startswith("%") else " "
        self.text = text or f"{op} {fmt(number)}{(sep + unit) if unit else ''}"

    def holds(self, v):
        return {"<": v < self.number, "<=": v <= self.number, ">": v > self.number,
                ">=": v >= self.number, "=": v == self.number,
                "within": abs(v) <= self.number}[self.op]


class Row:
    def __init__(self, figure, target=None, value=None, measured=None, broken=None):
        self.figure, self.target, self.value = figure, target, value
        self.measured = measured  # the text shown; None: the figure is missing
        self.broken = broken      # a reason the figure does not count even if it is in range
        self.status = ""
        self.crashed = False


def fmt(x, digits=None):
    """1234567 -> 1,234,567; 0.8412 -> 0.84; digits forces the decimals."""
    if digits is None:
        digits = 0 if abs(x) >= 1000 or float(x).is_integer() else 2 if abs(x) < 100 else 1
    return f"{x:,.{digits}f}"


def size(n):
    n = int(n)
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n:,}"


def search(pattern, text, flags=re.M):
    return re.search(pattern, text, flags)


# ---- parsers: (log text, meta) -> rows ------------------------------------------------------


def parse_load(log, meta):
    n = size(meta.get("n_load", 0))
    rows = []
    for case, what in (("one.yaml", "one file"), ("many", "1,000 files")):
        m = search(rf"^{re.escape(case)}\s+files=(\d+) bindings=(\d+) .*?total=([\d.]+) ms "
                   rf"cpu=([\d.]+) ms peak_rss=([\d.]+) MiB \(([\d.]+) bytes/binding\) "
                   rf"diagnostics=(\d+)", log)
        total = Row(f"load + validate {n} bindings, {what}", Target("<", 6, "s"))
        rss = Row(f"load + validate {n}, {what}: peak RSS per binding", Target("<", 500, "B"))
        if m:
            secs = float(m[3]) / 1000
            total.value = secs
            total.measured = f"{secs:.2f} s (cpu {float(m[4]) / 1000:.2f} s)"
            if int(m[7]):
                total.broken = f"{m[7]} diagnostics"
            rss.value = float(m[6])
            rss.measured = f"{fmt(float(m[6]), 0)} B ({fmt(float(m[5]), 0)} MiB)"
        rows += [total, rss]
    m = search(r"^reload\s+one file of (\d+): wall min=([\d.]+) median=([\d.]+) ms, cpu "
               r"min=([\d.]+) median=([\d.]+) ms; peak_rss=([\d.]+) MiB \(([\d.]+) bytes/binding\)",
               log)
    reload = Row("reload of one edited file in 1,000 (median of 12)", Target("<", 100, "ms"))
    reload_rss = Row("reload case: peak RSS per binding")
    if m:
        reload.value = float(m[3])
        reload.measured = (f"{float(m[3]):.1f} ms (min {float(m[2]):.1f}, "
                           f"cpu median {float(m[5]):.1f})")
        parsed = re.findall(r"^reload\s+edit=\S+\s+files_parsed=(\d+)", log, re.M)
        if any(p != "1" for p in parsed):
            reload.broken = "files_parsed != 1"
        reload_rss.value = float(m[7])
        reload_rss.measured = f"{fmt(float(m[7]), 0)} B ({fmt(float(m[6]), 0)} MiB)"
    return rows + [reload, reload_rss]


def parse_plan(log, meta):
    n = size(meta.get("n_plan", 0))
    best = Row(f"make_plan {n} desired x observed x applied (best of "
               f"{meta.get('plan_repeats', '?')})", Target("<", 1, "s"))
    memory = Row("make_plan: peak RSS above its inputs")
    derive = Row(f"derive + fingerprint {n} passwords")
    m = search(r"^make_plan best of \d+: ([\d.]+) s \(cpu ([\d.]+) s\); peak RSS (\d+) MiB "
               r"\((\d+) MiB above", log)
    if m:
        best.value = float(m[1])
        best.measured = f"{float(m[1]):.2f} s (cpu {float(m[2]):.2f} s)"
        memory.value = float(m[4])
        memory.measured = f"{m[4]} MiB (peak {m[3]} MiB)"
    m = search(r"^derive \d+ passwords: ([\d.]+) s; fingerprint: ([\d.]+) s; "
               r"derive\+fingerprint: ([\d.]+) s", log)
    if m:
        derive.value = float(m[3])
        derive.measured = f"{float(m[3]):.2f} s ({float(m[1]):.2f} s + {float(m[2]):.2f} s)"
    return [best, memory, derive]


def parse_service(log, meta):
    rows = []
    for label in ("GET /mqtt/bindings/{id}", "GET /mqtt/bindings?limit=50", "POST /mqtt/bindings",
                  "DELETE /mqtt/bindings/{id}"):
        row = Row(f"sim in process, {label}: CPU per request")
        m = search(rf"^{re.escape(label)}\s+([\d.]+) ns CPU/req(.*)$", log)
        if m:
            row.value = float(m[1])
            row.measured = f"{fmt(float(m[1]), 0)} ns" + (" (unexpected status!)" if m[2].strip()
                                                          else "")
        rows.append(row)
    return rows


def parse_wrk(log, meta):
    rows = []
    for label, target in (("GET /mqtt/bindings/{id}", 50000), ("GET /mqtt/bindings?limit=50", None),
                          ("POST /mqtt/bindings", 50000), ("DELETE /mqtt/bindings/{id}", None)):
        row = Row(f"sim on one core, wrk -t1 -c8, {label}",
                  Target(">=", target, "req/s") if target else None)
        m = search(rf"^{re.escape(label)}\s+([\d.]+) req/s\s+([\d.]+) us CPU/req(.*)$", log)
        if m:
            row.value = float(m[1])
            row.measured = f"{fmt(float(m[1]), 0)} req/s ({m[2]} µs CPU/req)"
            errors = re.search(r"non-2xx: (\d+)", m[3])
            if errors:
                row.measured += f", {errors[1]} non-2xx"
                if target:
                    row.broken = "non-2xx answers"
        rows.append(row)
    return rows


def parse_api(log, meta):
    ratio = Row("api client vs wrk, GET by id, 8 connections, one thread", Target(">=", 70, "%"))
    m = search(r"^\s*ratio:\s+([\d.]+) %", log)
    w = search(r"^\s*wrk -t1 -c8:\s+([\d.]+) req/s", log)
    c = search(r"^\s*thingsync client:\s+([\d.]+) req/s\s+([\d.]+) us CPU/request", log)
    if meta.get("wrk") == "no":
        ratio.measured = "n/a (no wrk)"
    elif m and w and c:
        ratio.value = float(m[1])
        ratio.measured = (f"{float(m[1]):.1f}% ({fmt(float(c[1]), 0)} vs {fmt(float(w[1]), 0)} "
                          f"req/s; {c[2]} µs CPU/req)")
    requests = fmt(int(meta.get("api_requests", 0)))
    rate = Row(f"api client at rateLimit 200, {requests} requests: achieved",
               Target(">=", 97, "% of 200"))
    m = search(r"^\s*achieved:\s+([\d.]+) req/s = ([\d.]+) % of 200", log)
    if m:
        rate.value = float(m[2])
        rate.measured = f"{float(m[2]):.1f}% ({float(m[1]):.1f} req/s)"
    r429 = Row("api client at rateLimit 200: 429s seen", Target("=", 0))
    m = search(r"^\s*429s seen:\s+(\d+)\s+\(failed (\d+)\)", log)
    if m:
        r429.value = float(m[1])
        r429.measured = m[1] + (f" ({m[2]} failed)" if m[2] != "0" else "")
        if m[2] != "0":
            r429.broken = "failed requests"
    return [ratio, rate, r429]


def parse_apply(log, meta):
    sections = re.split(r"^== ", log, flags=re.M)

    def section(prefix):
        return next((s for s in sections if s.startswith(prefix)), "")

    throttled = Row("apply 5,000 creates at rateLimit 200: wall against the ideal 25 s",
                    Target("within", 5, text="within 5%"))
    m = search(r"^wall ([\d.]+) s, ([\d.]+) creates/s, ([-+][\d.]+)% against ideal",
               section("1. "))
    if m:
        throttled.value = float(m[3])
        throttled.measured = f"{m[3]}% ({float(m[1]):.2f} s, {m[2]} creates/s)"
    rows = [throttled]
    for c in (8, 32):
        row = Row(f"apply, sim latency 20 ms, concurrency {c}: share of the ideal {c * 50}/s",
                  Target(">=", 90, "%"))
        s = next((s for s in sections if s.startswith("2. ") and f"concurrency {c}," in s), "")
        m = search(r"^wall ([\d.]+) s, (\d+) creates/s = ([\d.]+)% of", s)
        if m:
            row.value = float(m[3])
            row.measured = f"{m[3]}% ({fmt(int(m[2]))} creates/s)"
        rows.append(row)
    fast = Row("apply 20,000 creates, unthrottled (whole run)", Target(">=", 10000, "creates/s"))
    m = search(r"^wall ([\d.]+) s, (\d+) creates/s", section("3. "))
    if m:
        fast.value = float(m[2])
        fast.measured = f"{fmt(int(m[2]))} creates/s ({float(m[1]):.2f} s)"
    return rows + [fast]


# RESULT lines: `RESULT <name> <value> <target>`, target `-` or an operator and a number.
FLEET = [  # name, figure, target
    ("plan_adoption_peak_mb", "plan, first adoption: peak RSS", "<400"),
    ("plan_adoption_wall_s", "plan, first adoption: wall", "-"),
    ("apply_adoption_wall_s", "apply, first adoption ({n} PUTs): wall", "-"),
    ("apply_adoption_peak_mb", "apply, first adoption: peak RSS", "-"),
    ("plan_converged_wall_s", "plan, converged: wall (best of 3)", "<3"),
    ("plan_converged_cpu_s", "plan, converged: CPU", "-"),
    ("plan_converged_peak_mb", "plan, converged: peak RSS", "<300"),
    ("run_ready_s", "run: start -> ready (first full pass done)", "<4"),
    ("run_reload_10th_put_ms", "run: one-file edit -> 10th PUT (median)", "-"),
    ("run_idle_rss_mb", "run: idle VmRSS after the reloads", "-"),
    ("run_hwm_mb", "run: VmHWM (start, full pass, reloads)", "<400"),
]
# aimd_bench.py's defaults: --rates 20,100,400 --retry-after 1,0.
AIMD = [(f"{prefix}_R{r}_{figure}", f"rateLimit auto, sim limit {r}/s, {said}: {what}", target)
        for prefix, said in (("aimd", "Retry-After sent"), ("aimd_noretry", "no Retry-After"))
        for r in (20, 100, 400)
        for figure, what, target in (("rate_pct", f"sustained rate, % of {r}/s", ">=85"),
                                     ("429_pct", "429 answers, % of requests", "<=2"))]

UNITS = {"_mb": "MB", "_ms": "ms", "_s": "s", "_pct": "%"}


def unit_of(name):
    return next((u for suffix, u in UNITS.items() if name.endswith(suffix)), "")


def target_of(text, unit):
    m = re.fullmatch(r"(<=|>=|<|>|=)([-\d.]+)", text)
    return Target(m[1], float(m[2]), unit) if m else None


def parse_results(expected):
    def parse(log, meta):
        found = {}
        for m in re.finditer(r"^RESULT (\S+) (\S+) (\S+)\s*$", log, re.M):
            found[m[1]] = (float(m[2]), m[3])
        n = size(meta.get("n_fleet", 0))
        rows = []
        names = [e[0] for e in expected] + [k for k in found if k not in {e[0] for e in expected}]
        labels = {e[0]: (e[1].format(n=n), e[2]) for e in expected}
        for name in names:
            figure, target = labels.get(name, (name, "-"))
            unit = unit_of(name)
            if name in found:
                target = found[name][1]  # the benchmark's own target wins
            row = Row(figure, target_of(target, unit))
            if name in found:
                row.value = found[name][0]
                row.measured = (f"{fmt(row.value, 1)}%" if unit == "%" else
                                f"{fmt(row.value)} {unit}".strip())
            rows.append(row)
        return rows
    return parse


PARSERS = {"load": parse_load, "plan": parse_plan, "service": parse_service, "wrk": parse_wrk,
           "api": parse_api, "apply": parse_apply, "aimd": parse_results(AIMD),
           "fleet": parse_results(FLEET)}


# ---- the table ------------------------------------------------------------------------------


def read(path, default=""):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return default


def bench_rows(logs, name, meta):
    """The section heading and the rows of one benchmark, each with its status."""
    status = read(os.path.join(logs, f"{name}.status")).split()
    cmd = read(os.path.join(logs, f"{name}.cmd")).strip()
    try:
        rows = PARSERS[name](read(os.path.join(logs, f"{name}.log")), meta)
    except Exception as e:  # a log this script does not understand must not hide the others
        rows = [Row(f"{name}: its log", Target("=", 0), measured=f"unreadable ({e!r})")]
        rows[0].status, rows[0].crashed = "FAIL", True
        return f"{name}: `{cmd}`", rows
    if not status or status[0] == "na":
        reason = " ".join(status[1:]) or "not run"
        for r in rows:
            r.measured, r.status = "n/a", "n/a" if r.target else ""
        return f"{name}: n/a ({reason})", rows
    info = dict(zip(status[0::2], status[1::2]))
    rc, secs, limit = int(info["rc"]), int(info["seconds"]), int(info["limit"])
    timed_out = rc in (124, 137) and secs >= limit
    how = (f"timed out after {limit} s" if timed_out else
           f"exit {rc} after {secs} s" if rc else f"{secs} s")
    heading = f"{name}: `{cmd}` ({how})"
    for r in rows:
        if r.measured is None:
            if rc:  # it crashed, failed or timed out before printing the figure
                r.measured = "timed out" if timed_out else f"missing (exit {rc})"
                r.status = "FAIL" if r.target else ""
                r.crashed = True
            else:   # it ran, and this build does not give the figure
                r.measured, r.status = "n/a (not printed)", "n/a" if r.target else ""
        elif r.target and r.value is None:
            r.status = "n/a"
        elif r.target:
            ok = r.target.holds(r.value) and not r.broken
            r.status = "pass" if ok else "FAIL"
            if r.broken:
                r.measured += f"; {r.broken}"
    return heading, rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("logs")
    p.add_argument("--out")
    args = p.parse_args()
    meta = {}
    for line in read(os.path.join(args.logs, "meta")).splitlines():
        key, _, value = line.partition("=")
        meta[key] = value
    quick = meta.get("mode") == "quick"

    secs = int(meta.get("seconds", 0))
    lines = [f"## bench/run.sh at {meta.get('scripts', '?')}, {meta.get('date', '?')}", ""]
    details = [meta.get("build_type", "")]
    if meta.get("version"):
        details.append(f"thingsync {meta['version']}, built {meta.get('built', '?')}")
    if meta.get("build_source"):
        details.append(f"source {meta['build_source']}")
    details = [d for d in details if d]
    build = f"build `{meta.get('build', '?')}`" + (f" ({'; '.join(details)})" if details else "")
    lines.append(f"{build}; nproc {meta.get('nproc', '?')}; load average "
                 f"{meta.get('load_before', '?')} before, {meta.get('load_after', '?')} after; "
                 f"{secs // 60} min {secs % 60} s.")
    if quick:
        lines += ["", "**--quick: tiny sizes, a smoke test of bench/run.sh.** The figures are not "
                  "measurements, and the targets (set for the full sizes) do not apply to them."]
    lines += ["", "| figure | target | measured | pass/fail |", "| --- | --- | --- | --- |"]
    counts = {"pass": 0, "FAIL": 0, "n/a": 0}
    failed = crashed = False
    for name in BENCHES:
        heading, rows = bench_rows(args.logs, name, meta)
        lines.append(f"| **{heading}** | | | |")
        for r in rows:
            target = r.target.text if r.target else ""
            lines.append(f"| {r.figure} | {target} | {r.measured} | {r.status} |")
            if r.status in counts:
                counts[r.status] += 1
            failed |= r.status == "FAIL"
            crashed |= r.crashed
    lines += ["", f"Rows with a target: {counts['pass']} pass, {counts['FAIL']} FAIL, "
              f"{counts['n/a']} n/a."]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 1 if (crashed if quick else failed) else 0


if __name__ == "__main__":
    sys.exit(main())
