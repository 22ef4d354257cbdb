#!/usr/bin/env python3
"""The adaptive rate (sync.rateLimit: auto, issue 18) against thingsync-sim's rate limit.

For each R in --rates and each --retry-after mode: a sim with `--rate-limit R` (a token bucket
of one second's burst; thingsync is not told R) and `--rate-limit-retry-after 1|0`, and one
`thingsync apply` of N creates into the empty sim with `rateLimit: auto`,
`rateLimitMax: 1000` (far above every R: the max is not what limits) and `concurrency: 8`.

Figures, per run, from the sim's request log (--request-log: one line per API request, with
its status and the sim's time to the millisecond):
  sustained  creates answered 201 per second from the first 429 (the end of the fast start:
             the controller has found the limit) to the last create; % of R.
             Target: >= 85% of R.
  whole      creates / wall time of the whole `apply` process (start-up, desired-state load,
             list, plan, the ramp-up, state writes); % of R. No target: reported for honesty.
  429        429 answers / every API request of the run. Target: <= 2%.
With no 429 at all, "sustained" counts from the first create.

Output: a table, one `RESULT <figure> <measured> <target>` line per targeted figure (for
bench/run.sh), docs/aimd.csv (the table), docs/aimd-curve.csv (2xx answers per second over
time, a 2 s sliding window every 0.25 s) and docs/aimd.png (that curve, one line per R, R
dashed; one panel per Retry-After mode; drawn here in pure Python, no plotting library).

Usage:
  bench/engine/aimd_bench.py [--build build/dev] [--rates 20,100,400] [--creates 5000]
                             [--max-seconds 60] [--retry-after 1,0] [--out docs]
  --max-seconds S: fewer creates where N at R would take longer than S seconds at R
  (R=20: 1,200), so that the default run takes about 5 minutes.

Nothing is pinned to a core: on a machine shared with other builds and benchmarks the
scheduler places the two processes better than a fixed taskset would. The load average
(os.getloadavg) is printed before and after.
"""

import argparse
import bisect
import csv
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_bench import build_dir  # noqa: E402

RATE_MAX = 1000
CONCURRENCY = 8
TARGET_RATE_PCT = 85
TARGET_429_PCT = 2


def log(msg):
    print(msg, flush=True)


# ---- one run -------------------------------------------------------------------------------


def start_sim(sim_bin, work, rate, retry_after):
    out = open(os.path.join(work, "sim.out"), "w+")
    proc = subprocess.Popen(
        [sim_bin, "--listen", "127.0.0.1:0", "--token", "bench", "--max-page-size", "1000",
         "--rate-limit", str(rate), "--rate-limit-retry-after", str(retry_after),
         "--request-log", os.path.join(work, "requests.jsonl")],
        stdout=out, stderr=open(os.path.join(work, "sim.err"), "w"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out.seek(0)
        line = out.readline()
        if line.startswith("listening on "):
            return proc, line.split()[-1]
        time.sleep(0.02)
    proc.kill()
    sys.exit("thingsync-sim did not start: see " + work)


def write_fleet(work, creates):
    os.makedirs(os.path.join(work, "fleet"))
    with open(os.path.join(work, "key"), "w") as f:
        f.write("bench-fleet-key-0123456789abcdefghijklmnopqrstuvwxyz\n")
    with open(os.path.join(work, "token"), "w") as f:
        f.write("bench\n")
    with open(os.path.join(work, "fleet", "fleet.yaml"), "w") as f:
        f.write("defaults:\n  password:\n    derive:\n      keyFile: ../key\nbindings:\n")
        for i in range(creates):
            f.write(f"  - deviceId: imei:35{i:013d}\n")


def write_config(work, url):
    with open(os.path.join(work, "config.yaml"), "w") as f:
        f.write(f'api: {{baseUrl: "{url}", timeout: 10s}}\n'
                "auth: {tokenFile: token}\n"
                "desiredState: {path: fleet}\n"
                "state: {path: state.json}\n"
                f"sync: {{rateLimit: auto, rateLimitMax: {RATE_MAX}, "
                f"concurrency: {CONCURRENCY}}}\n")


def parse_time(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def one_run(build, rate, retry_after, creates):
    work = tempfile.mkdtemp(prefix="aimd-bench-")
    write_fleet(work, creates)
    sim, url = start_sim(os.path.join(build, "src/sim/thingsync-sim"), work, rate, retry_after)
    try:
        write_config(work, url)
        t0 = time.monotonic()
        done = subprocess.run(
            [os.path.join(build, "src/cli/thingsync"), "apply", "--yes", "--config",
             os.path.join(work, "config.yaml"), "--log-level", "warn"],
            cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wall = time.monotonic() - t0
    finally:
        sim.terminate()
        sim.wait()
    if done.returncode != 0:
        log(done.stdout[-2000:] + done.stderr[-2000:])
        sys.exit(f"apply failed (exit {done.returncode}); its files are in {work}")
    with open(os.path.join(work, "requests.jsonl")) as f:
        requests = [json.loads(line) for line in f]
    cuts = sum("cutting the rate" in line for line in done.stderr.splitlines())
    return measure(rate, retry_after, creates, wall, requests, cuts)


def measure(rate, retry_after, creates, wall, requests, cuts):
    times = [parse_time(r["time"]) for r in requests]
    start = times[0]
    created = [t - start for t, r in zip(times, requests)
               if r["method"] == "POST" and r["status"] == 201]
    ok = sorted(t - start for t, r in zip(times, requests) if 200 <= r["status"] < 300)
    limited = [t - start for t, r in zip(times, requests) if r["status"] == 429]
    if len(created) != creates:
        sys.exit(f"R={rate}: {len(created)} creates answered 201, expected {creates}")
    ramp = limited[0] if limited else created[0]
    after = [t for t in created if t >= ramp]
    span = created[-1] - ramp
    sustained = len(after) / span if span > 0 else float("nan")
    curve = []
    t = 0.0
    while t <= ok[-1] + 0.25:
        n = bisect.bisect_right(ok, t) - bisect.bisect_right(ok, t - 2.0)
        curve.append((t, n / min(2.0, max(t, 0.25))))
        t += 0.25
    return {
        "retry_after": retry_after, "R": rate, "creates": creates, "wall_s": wall,
        "requests": len(requests), "r429": len(limited), "cuts": cuts, "ramp_s": ramp,
        "sustained": sustained, "sustained_pct": 100 * sustained / rate,
        "whole": creates / wall, "whole_pct": 100 * creates / wall / rate,
        "r429_pct": 100 * len(limited) / len(requests), "curve": curve,
    }


# ---- a PNG in pure Python ------------------------------------------------------------------

FONT = {  # 5x7, one string of 7 rows of 5 bits a glyph
    "0": "01110 10001 10011 10101 11001 10001 01110", "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111", "3": "11111 00010 00100 00010 00001 10001 01110",
    "4": "00010 00110 01010 10010 11111 00010 00010", "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110", "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110", "9": "01110 10001 10001 01111 00001 00010 01100",
    "A": "01110 10001 10001 11111 10001 10001 10001", "B": "11110 10001 10001 11110 10001 10001 11110",
    "C": "01110 10001 10000 10000 10000 10001 01110", "D": "11110 10001 10001 10001 10001 10001 11110",
    "E": "11111 10000 10000 11110 10000 10000 11111", "F": "11111 10000 10000 11110 10000 10000 10000",
    "G": "01110 10001 10000 10111 10001 10001 01111", "H": "10001 10001 10001 11111 10001 10001 10001",
    "I": "01110 00100 00100 00100 00100 00100 01110", "J": "00111 00010 00010 00010 00010 10010 01100",
    "K": "10001 10010 10100 11000 10100 10010 10001", "L": "10000 10000 10000 10000 10000 10000 11111",
    "M": "10001 11011 10101 10101 10001 10001 10001", "N": "10001 10001 11001 10101 10011 10001 10001",
    "O": "01110 10001 10001 10001 10001 10001 01110", "P": "11110 10001 10001 11110 10000 10000 10000",
    "Q": "01110 10001 10001 10001 10101 10010 01101", "R": "11110 10001 10001 11110 10100 10010 10001",
    "S": "01111 10000 10000 01110 00001 00001 11110", "T": "11111 00100 00100 00100 00100 00100 00100",
    "U": "10001 10001 10001 10001 10001 10001 01110", "V": "10001 10001 10001 10001 10001 01010 00100",
    "W": "10001 10001 10001 10101 10101 10101 01010", "X": "10001 10001 01010 00100 01010 10001 10001",
    "Y": "10001 10001 10001 01010 00100 00100 00100", "Z": "11111 00001 00010 00100 01000 10000 11111",
    "-": "00000 00000 00000 11111 00000 00000 00000", "=": "00000 00000 11111 00000 11111 00000 00000",
    "/": "00000 00001 00010 00100 01000 10000 00000", "%": "11000 11001 00010 00100 01000 10011 00011",
    ".": "00000 00000 00000 00000 00000 01100 01100", ",": "00000 00000 00000 00000 01100 00100 01000",
    "(": "00010 00100 01000 01000 01000 00100 00010", ")": "01000 00100 00010 00010 00010 00100 01000",
    ":": "00000 01100 01100 00000 01100 01100 00000", " ": "00000 00000 00000 00000 00000 00000 00000",
}
COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (140, 86, 75)]


class Canvas:
    def __init__(self, w, h):
        self.w, self.h = w, h
        self.px = bytearray(b"\xff" * (w * h * 3))

    def dot(self, x, y, c):
        if 0 <= x < self.w and 0 <= y < self.h:
            i = (y * self.w + x) * 3
            self.px[i:i + 3] = bytes(c)

    def line(self, x0, y0, x1, y1, c, width=1, dash=0):
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for s in range(steps + 1):
            if dash and (s // dash) % 2:
                continue
            x = round(x0 + (x1 - x0) * s / steps)
            y = round(y0 + (y1 - y0) * s / steps)
            for dx in range(width):
                for dy in range(width):
                    self.dot(x + dx, y + dy, c)

    def text(self, x, y, s, c=(0, 0, 0), scale=2):
        for ch in s.upper():
            rows = FONT.get(ch, FONT[" "]).split()
            for r, bits in enumerate(rows):
                for col, bit in enumerate(bits):
                    if bit == "1":
                        for a in range(scale):
                            for b in range(scale):
                                self.dot(x + col * scale + a, y + r * scale + b, c)
            x += 6 * scale

    def png(self, path):
        raw = b"".join(b"\x00" + bytes(self.px[y * self.w * 3:(y + 1) * self.w * 3])
                       for y in range(self.h))

        def chunk(kind, data):
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        with open(path, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n")
            f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0)))
            f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
            f.write(chunk(b"IEND", b""))


def log_y(v, lo, hi, top, bottom):
    v = min(max(v, lo), hi)
    share = (math.log(v) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return round(bottom - share * (bottom - top))


def plot(results, rates, modes, path):
    panel_h, left, right, width = 340, 90, 20, 960
    c = Canvas(width, 40 + panel_h * len(modes) + 10)
    c.text(10, 10, f"RATELIMIT: AUTO (MAX {RATE_MAX}) AGAINST A LIMIT R IT IS NOT TOLD")
    t_max = max(p[0] for r in results for p in r["curve"])
    t_max = max(10, int(t_max / 10 + 1) * 10)
    lo, hi = 5, 2000
    for m, mode in enumerate(modes):
        title = "429 WITH RETRY-AFTER" if mode else "429 WITHOUT RETRY-AFTER"
        c.text(10, 40 + m * panel_h + 6, title)
        c.text(10, 40 + m * panel_h + 24, "Y: 2XX ANSWERS PER SECOND, 2 S WINDOW, LOG SCALE",
               (90, 90, 90))
        top = 40 + m * panel_h + 48
        bottom = 40 + (m + 1) * panel_h - 50
        x_of = lambda t: round(left + t / t_max * (width - left - right))
        c.line(left, top, left, bottom, (0, 0, 0))
        c.line(left, bottom, width - right, bottom, (0, 0, 0))
        for v in (5, 10, 20, 50, 100, 200, 500, 1000, 2000):
            y = log_y(v, lo, hi, top, bottom)
            c.line(left - 5, y, left, y, (0, 0, 0))
            c.line(left + 1, y, width - right, y, (232, 232, 232))
            c.text(left - 10 - 12 * len(str(v)), y - 7, str(v))
        step = 10 if t_max <= 100 else 20
        for t in range(0, t_max + 1, step):
            c.line(x_of(t), bottom, x_of(t), bottom + 5, (0, 0, 0))
            c.text(x_of(t) - 6 * len(str(t)), bottom + 10, str(t))
        label = "X: SECONDS FROM THE FIRST API REQUEST"
        c.text(width - right - 12 * len(label), bottom + 28, label, (90, 90, 90))
        labels = []
        for i, rate in enumerate(rates):
            colour = COLOURS[i % len(COLOURS)]
            y = log_y(rate, lo, hi, top, bottom)
            c.line(left + 1, y, width - right, y, colour, width=1, dash=6)
            run = next((r for r in results if r["R"] == rate and r["retry_after"] == mode), None)
            if not run:
                continue
            pts = [(x_of(t), log_y(v, lo, hi, top, bottom)) for t, v in run["curve"]]
            for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
                c.line(x0, y0, x1, y1, colour, width=2)
            labels.append((f"R={rate}: {run['sustained_pct']:.0f}% OF R SUSTAINED, "
                           f"429 {run['r429_pct']:.1f}%", colour))
        labels.append(("R: THE SIM LIMIT (DASHED)", (90, 90, 90)))
        # The legend, on white, in the panel's top right corner: a line of its colour, its label.
        w = 12 * max(len(t) for t, _ in labels) + 50
        x0, y0 = width - right - w - 4, top + 4
        for y in range(y0, y0 + 18 * len(labels) + 8):
            c.line(x0, y, x0 + w, y, (255, 255, 255))
        for i, (label, colour) in enumerate(labels):
            y = y0 + 6 + 18 * i
            dash = 6 if i == len(labels) - 1 else 0
            c.line(x0 + 6, y + 7, x0 + 36, y + 7, colour, width=2, dash=dash)
            c.text(x0 + 44, y, label, colour)
    c.png(path)


# ---- main ----------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build/dev")
    ap.add_argument("--rates", default="20,100,400")
    ap.add_argument("--creates", type=int, default=5000)
    ap.add_argument("--max-seconds", type=float, default=60)
    ap.add_argument("--retry-after", default="1,0")
    ap.add_argument("--out", default="docs")
    a = ap.parse_args()
    build = build_dir(a.build)
    rates = [int(r) for r in a.rates.split(",")]
    modes = [int(m) for m in a.retry_after.split(",")]
    log("load average before: %.2f %.2f %.2f (2 cores)" % os.getloadavg())
    results = []
    for mode in modes:
        for rate in rates:
            creates = min(a.creates, int(rate * a.max_seconds))
            log(f"-- R={rate} Retry-After {'sent' if mode else 'not sent'}: {creates} creates")
            results.append(one_run(build, rate, mode, creates))
    log("load average after:  %.2f %.2f %.2f (2 cores)" % os.getloadavg())

    log("")
    log("Retry-After |   R | creates | wall s | ramp s | sustained/s |  % of R | whole/s |"
        "  % of R | 429s |  429 % | cuts | pass")
    for r in results:
        ok = r["sustained_pct"] >= TARGET_RATE_PCT and r["r429_pct"] <= TARGET_429_PCT
        log(f"{'sent' if r['retry_after'] else 'none':>11} | {r['R']:3} | {r['creates']:7} | "
            f"{r['wall_s']:6.1f} | {r['ramp_s']:6.1f} | {r['sustained']:11.1f} | "
            f"{r['sustained_pct']:6.1f}% | {r['whole']:7.1f} | {r['whole_pct']:6.1f}% | "
            f"{r['r429']:4} | {r['r429_pct']:5.2f}% | {r['cuts']:4} | {'PASS' if ok else 'FAIL'}")
    log("")
    for r in results:
        name = f"aimd_R{r['R']}" if r["retry_after"] else f"aimd_noretry_R{r['R']}"
        log(f"RESULT {name}_rate_pct {r['sustained_pct']:.1f} >={TARGET_RATE_PCT}")
        log(f"RESULT {name}_429_pct {r['r429_pct']:.2f} <={TARGET_429_PCT}")

    os.makedirs(a.out, exist_ok=True)
    fields = ["retry_after", "R", "creates", "wall_s", "ramp_s", "sustained", "sustained_pct",
              "whole", "whole_pct", "requests", "r429", "r429_pct", "cuts"]
    with open(os.path.join(a.out, "aimd.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(fields)
        for r in results:
            w.writerow([round(r[k], 3) if isinstance(r[k], float) else r[k] for k in fields])
    with open(os.path.join(a.out, "aimd-curve.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["retry_after", "R", "t_s", "ok_per_s"])
        for r in results:
            for t, v in r["curve"]:
                w.writerow([r["retry_after"], r["R"], f"{t:.2f}", f"{v:.1f}"])
    plot(results, rates, modes, os.path.join(a.out, "aimd.png"))
    log(f"wrote {a.out}/aimd.csv, {a.out}/aimd-curve.csv, {a.out}/aimd.png")


if __name__ == "__main__":
    main()
