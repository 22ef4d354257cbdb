#!/usr/bin/env python3
"""Benchmarks of `thingsync run`, the daemon, against thingsync-sim (issue 6).

  reload  1,000,000 bindings in 1,000 desired-state files, the fleet converged, the daemon
          running (default sync settings): one file is edited so that 10 of its bindings get
          another password; the time from the write of the file (just before the rename) to
          the 10th PUT arriving at the sim (its request log). Median of --edits edits, which
          alternate between "10 passwords from files" and back to the derived ones.
          Target: < 1 s.
  idle    100,000 converged bindings, sync.pollInterval 1s (everything else default), for a
          --window of 60 s once the fleet is quiet: requests per poll (target exactly 1), the
          daemon's CPU (utime+stime from /proc/PID/stat over the window; target < 1% of one
          core) and its memory (VmRSS, VmHWM from /proc/PID/status) per binding (target
          VmRSS < 300 bytes per binding).

Usage:
  bench/engine/daemon_bench.py [--build build/dev] [--work DIR] [--edits 7] [--window 60]
                               [--reload-bindings 1000000] [--idle-bindings 100000] [CASE...]
  CASE: reload, idle (default: both). Needs a RelWithDebInfo (or Release) build of thingsync
  and thingsync-sim in --build, python3 and taskset.

The simulator preloads its bindings with --seed N --random-seed 42: the same bindings, ids
included, on every run. The desired-state tree is written from the sim's listing. Every run
converges the fleet first: the daemon's first pass PUTs every password once (first adoption;
about 20 s per million bindings). A state file of an earlier run is removed first: the sim
listens on a new port (a state file is bound to its API) and its seeded bindings carry new
timestamps (which the earlier run's receipts would take for changes made outside thingsync).
Default --work: a temporary directory, removed at the end. The sim runs on core 0 and the daemon on core 1 (taskset). The machine
load (os.getloadavg) is printed with the results: CPU time is the daemon's own, but wall-clock
latencies suffer on a busy machine.
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime

CLIENT_TICKS = os.sysconf("SC_CLK_TCK")
RANDOM_SEED = "42"
OVERLAP_S = 60  # sync.modifiedSinceOverlap default: polls re-read changes this recent


def build_dir(build):
    """Moves to the repository's top (where a relative --build is read from) and returns the
    absolute path of `build`, once it holds thingsync and thingsync-sim; exits otherwise."""
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    for exe in ("src/cli/thingsync", "src/sim/thingsync-sim"):
        if not os.access(os.path.join(build, exe), os.X_OK):
            sys.exit(f"build {exe} in {build} first")
    return os.path.abspath(build)


def log(msg):
    print(msg, flush=True)


def http(url, method="GET", timeout=600):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return None, b""


def iso_to_epoch(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


class Sim:
    def __init__(self, build, wd, n):
        self.log_path = os.path.join(wd, "requests.log")
        if os.path.exists(self.log_path):
            os.remove(self.log_path)
        self.out = open(os.path.join(wd, "sim.out"), "w+")
        self.err = open(os.path.join(wd, "sim.err"), "w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", "0", os.path.join(build, "src/sim/thingsync-sim"),
             "--listen", "127.0.0.1:0", "--token", "bench", "--admin",
             "--seed", str(n), "--random-seed", RANDOM_SEED, "--request-log", self.log_path],
            stdout=self.out, stderr=self.err)
        self.started = time.time()
        deadline = time.time() + 300
        while time.time() < deadline:
            self.out.seek(0)
            m = re.search(r"listening on (\S+)", self.out.read())
            if m:
                self.url = m.group(1)
                return
            if self.proc.poll() is not None:
                sys.exit("thingsync-sim exited: " + open(self.err.name).read())
            time.sleep(0.05)
        sys.exit("thingsync-sim did not start")

    def admin(self, path, method="GET"):
        status, body = http(self.url + path, method)
        if status != 200:
            sys.exit(f"sim admin {method} {path}: {status}")
        return json.loads(body)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def imei_files(n):
    return 1000 if n >= 100_000 else max(1, n // 100)


def write_fleet(wd, sim, n):
    """The desired tree (the sim's devices, sorted, in 1,000 files or n/100), the fleet key,
    the token and ten password files. Returns the path of the file the edits change."""
    fleet = os.path.join(wd, "fleet")
    marker = os.path.join(wd, "fleet.done")
    files = imei_files(n)
    edit_index = files // 2
    edited = os.path.join(fleet, f"batch-{edit_index // 100}", f"part-{edit_index}.yaml")
    if os.path.exists(marker) and open(marker).read() == f"{n} {RANDOM_SEED}":
        # As written: an earlier run may have stopped after an edit.
        with open(edited, "w") as f:
            f.write(fleet_file(json.load(open(os.path.join(wd, "edited-devices.json"))), False))
        return edited
    log(f"writing the desired state: {n} devices from the sim's listing in {files} files")
    items = sim.admin("/_sim/bindings")["items"]
    devices = sorted(b["deviceId"] for b in items)
    del items
    if len(devices) != n:
        sys.exit(f"the sim holds {len(devices)} bindings, expected {n}")
    shutil.rmtree(fleet, ignore_errors=True)
    with open(os.path.join(wd, "fleet-key"), "w") as f:
        f.write("bench-only-fleet-key-0123456789abcdef0123456789\n")
    with open(os.path.join(wd, "token"), "w") as f:
        f.write("bench\n")
    os.makedirs(os.path.join(wd, "pw"), exist_ok=True)
    for i in range(10):
        with open(os.path.join(wd, "pw", f"{i}.pass"), "w") as f:
            f.write(f"Bench-Password-{i:02d}-abcdefghij.\n")
    per = n // files
    for k in range(files):
        path = os.path.join(fleet, f"batch-{k // 100}", f"part-{k}.yaml")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        chunk = devices[k * per:(k + 1) * per if k + 1 < files else n]
        with open(path, "w") as f:
            f.write(fleet_file(chunk, False))
    with open(os.path.join(wd, "edited-devices.json"), "w") as f:
        json.dump(devices[edit_index * per:(edit_index + 1) * per], f)
    with open(marker, "w") as f:
        f.write(f"{n} {RANDOM_SEED}")
    return edited


def fleet_file(devices, with_files):
    """One desired-state file; with_files: 10 evenly spread bindings take a password file."""
    out = ["defaults:\n  password:\n    derive:\n      keyFile: ../../fleet-key\nbindings:\n"]
    step = max(1, len(devices) // 10)
    for i, d in enumerate(devices):
        out.append(f'  - deviceId: "{d}"\n')
        if with_files and i % step == 0 and i // step < 10:
            out.append(f"    password:\n      file: ../../pw/{i // step}.pass\n")
    return "".join(out)


def write_config(wd, sim_url, poll_interval):
    with open(os.path.join(wd, "config.yaml"), "w") as f:
        f.write(f"""api: {{baseUrl: "{sim_url}", timeout: 30s}}
auth: {{tokenFile: token}}
desiredState: {{path: fleet}}
state: {{path: state.json}}
sync: {{rateLimit: 1000000, concurrency: 32{poll_interval}}}
metrics: {{listen: "127.0.0.1:0"}}
""")


class Daemon:
    def __init__(self, build, wd, cores="1"):
        self.err_path = os.path.join(wd, "daemon.log")
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(
            # BENCH_WRAP: a command to run the daemon under (valgrind --tool=massif, env ...).
            # With one that forks (heaptrack's script), PID is the wrapper's: its /proc figures
            # and the SIGTERM at the end miss the daemon.
            ["taskset", "-c", cores] + os.environ.get("BENCH_WRAP", "").split() +
            [os.path.join(build, "src/cli/thingsync"), "run",
             "--config", os.path.join(wd, "config.yaml"), "--log-level", "info"],
            stdout=subprocess.DEVNULL, stderr=self.err)
        self.pid = self.proc.pid
        deadline = time.time() + 60
        while time.time() < deadline:
            m = re.search(r"metrics=http://127\.0\.0\.1:(\d+)", open(self.err_path).read())
            if m:
                self.port = int(m.group(1))
                return
            self.check_alive()
            time.sleep(0.05)
        sys.exit("the daemon did not start: " + open(self.err_path).read()[-2000:])

    def check_alive(self):
        if self.proc.poll() is not None:
            sys.exit("the daemon exited: " + open(self.err_path).read()[-3000:])

    def wait_ready(self, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.check_alive()
            if http(f"http://127.0.0.1:{self.port}/readyz", timeout=10)[0] == 200:
                return
            time.sleep(0.2)
        sys.exit("the daemon did not become ready")

    def metric(self, name):
        status, body = http(f"http://127.0.0.1:{self.port}/metrics", timeout=30)
        m = re.search(r"^" + re.escape(name) + r" (\S+)$", body.decode(), re.M)
        return float(m.group(1)) if m else 0.0

    def cpu_seconds(self):
        fields = open(f"/proc/{self.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLIENT_TICKS  # utime, stime

    def memory(self):
        out = {}
        for line in open(f"/proc/{self.pid}/status"):
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) * 1024
        return out

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class RequestLog:
    """Follows the sim's request log (one JSON object a line)."""

    def __init__(self, path):
        self.path = path
        self.offset = 0

    def skip_to_end(self):
        self.offset = os.path.getsize(self.path) if os.path.exists(self.path) else 0

    def read_new(self):
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        return [json.loads(line) for line in data[:end].splitlines() if line]


def converge(build, wd, n, poll_interval):
    """Starts the sim and the daemon; returns them once the daemon is ready (converged)."""
    sim = Sim(build, wd, n)
    log(f"sim: {n} bindings seeded in {time.time() - sim.started:.1f} s at {sim.url}")
    edited = write_fleet(wd, sim, n)
    write_config(wd, sim.url, poll_interval)
    for name in ("state.json", "state.json.journal", "state.json.lock"):
        if os.path.exists(os.path.join(wd, name)):
            os.remove(os.path.join(wd, name))
    t0 = time.time()
    daemon = Daemon(build, wd)
    daemon.wait_ready(3600)
    puts = sum(1 for r in RequestLog(sim.log_path).read_new() if r["method"] == "PUT")
    log(f"daemon ready after {time.time() - t0:.1f} s ({puts} PUTs at start: first adoption)")
    return sim, daemon, edited, puts


def wait_quiet(since, poll_interval):
    """Polls re-read the changes of the last modifiedSinceOverlap (60 s) until a poll has run
    that long after the newest one: the fleet is quiet after the first poll past that."""
    left = since + OVERLAP_S + poll_interval + 5 - time.time()
    if left > 0:
        log(f"waiting {left:.0f} s: modifiedSinceOverlap and one more poll after convergence")
        time.sleep(left)


def edit_once(daemon, reqlog, edited, devices, with_files):
    """Rewrites the edited file (10 passwords from files, or back to derived) and waits for
    the 10 PUTs and for the full pass after them. Returns (write -> 10th PUT, PUTs, failed
    PUTs, write -> full pass done, daemon CPU seconds)."""
    passes = daemon.metric("thingsync_reconcile_duration_seconds_count")
    reqlog.skip_to_end()
    tmp = os.path.join(os.path.dirname(edited), ".edit.tmp")  # hidden: not watched
    with open(tmp, "w") as f:
        f.write(fleet_file(devices, with_files))
    cpu0 = daemon.cpu_seconds()
    t_write = time.time()
    os.rename(tmp, edited)
    puts = []
    deadline = time.time() + 60
    while len(puts) < 10 and time.time() < deadline:
        time.sleep(0.01)
        puts += [r for r in reqlog.read_new() if r["method"] == "PUT"]
    if len(puts) < 10:
        sys.exit(f"only {len(puts)} PUTs within 60 s of the edit")
    t10 = iso_to_epoch(puts[9]["time"])
    # Then the full pass: wait for it, so that the next edit finds the daemon idle.
    while daemon.metric("thingsync_reconcile_duration_seconds_count") <= passes:
        daemon.check_alive()
        time.sleep(0.1)
    t_pass = time.time()
    time.sleep(0.5)
    puts += [r for r in reqlog.read_new() if r["method"] == "PUT"]
    bad = [r for r in puts if r["status"] != 200]
    return t10 - t_write, len(puts), len(bad), t_pass - t_write, daemon.cpu_seconds() - cpu0


def case_reload(args, wd):
    n = args.reload_bindings
    sim, daemon, edited, _ = converge(args.build, wd, n, "")
    try:
        wait_quiet(time.time(), 30)
        devices = json.load(open(os.path.join(wd, "edited-devices.json")))
        reqlog = RequestLog(sim.log_path)
        rows = []
        # The file as the fixture wrote it; the first edit gives 10 bindings password files.
        for k in range(args.edits):
            with_files = k % 2 == 0
            r = edit_once(daemon, reqlog, edited, devices, with_files)
            rows.append((k + 1, "to files" if with_files else "to derived") + r +
                        (os.getloadavg()[0],))
            log(f"edit {k + 1}: 10th PUT after {1000 * r[0]:.0f} ms")
            time.sleep(1)
        mem = daemon.memory()
    finally:
        daemon.stop()
        sim.stop()
    lat = [r[2] for r in rows]
    print()
    print(f"reload: {n:,} bindings in {imei_files(n)} files, one file edited (10 passwords)")
    print("| edit | change | write -> 10th PUT | PUTs | failed | write -> full pass done |"
          " daemon CPU | load avg |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {1000 * r[2]:.0f} ms | {r[3]} | {r[4]} | {r[5]:.2f} s |"
              f" {r[6]:.2f} s | {r[7]:.2f} |")
    print(f"median {1000 * statistics.median(lat):.0f} ms, min {1000 * min(lat):.0f} ms,"
          f" max {1000 * max(lat):.0f} ms (target < 1000 ms); daemon VmRSS"
          f" {mem['VmRSS'] / 2**20:.0f} MiB, VmHWM {mem['VmHWM'] / 2**20:.0f} MiB")
    ok = statistics.median(lat) < 1.0 and all(r[3] == 10 and r[4] == 0 for r in rows)
    return ok


def case_idle(args, wd):
    n = args.idle_bindings
    sim, daemon, edited, _ = converge(args.build, wd, n, ", pollInterval: 1s")
    try:
        wait_quiet(time.time(), 1)
        mem_before = daemon.memory()
        reqlog = RequestLog(sim.log_path)
        reqlog.skip_to_end()
        cpu0, t0 = daemon.cpu_seconds(), time.time()
        log(f"measuring for {args.window} s")
        time.sleep(args.window)
        cpu1, t1 = daemon.cpu_seconds(), time.time()
        mem = daemon.memory()
        shutil.copyfile(f"/proc/{daemon.pid}/smaps", os.path.join(wd, "smaps-idle.txt"))
        if os.environ.get("BENCH_HOLD"):  # time to look at the daemon (gdb -p, heaptrack -p)
            log(f"holding the daemon (pid {daemon.pid}) for {os.environ['BENCH_HOLD']} s")
            time.sleep(float(os.environ["BENCH_HOLD"]))
        load = os.getloadavg()
        reqs = reqlog.read_new()
        # What a reload adds (an operator edits the fleet sooner or later): one edit, then
        # back, and the memory once its full passes are over.
        devices = json.load(open(os.path.join(wd, "edited-devices.json")))
        edit_once(daemon, reqlog, edited, devices, True)
        edit_once(daemon, reqlog, edited, devices, False)
        time.sleep(2)
        mem_reload = daemon.memory()
    finally:
        daemon.stop()
        sim.stop()
    polls = [r for r in reqs if "modifiedSince=" in r["query"] and "cursor=" not in r["query"]]
    other = [r for r in reqs if r["method"] != "GET"]
    cpu = cpu1 - cpu0
    wall = t1 - t0
    per_poll = len(reqs) / len(polls) if polls else float("nan")
    print()
    print(f"idle: {n:,} converged bindings, pollInterval 1s, {wall:.1f} s window"
          f" (load avg {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})")
    print("| what | value | target |")
    print("| --- | --- | --- |")
    print(f"| polls | {len(polls)} | |")
    print(f"| requests | {len(reqs)} ({len(other)} writes) | |")
    print(f"| requests per poll | {per_poll:.2f} | 1 |")
    print(f"| CPU (utime+stime) | {cpu:.2f} s = {100 * cpu / wall:.2f}% of one core | < 1% |")
    print(f"| VmRSS | {mem['VmRSS'] / 2**20:.1f} MiB = {mem['VmRSS'] / n:.0f} B/binding"
          f" (before the window {mem_before['VmRSS'] / n:.0f}; heap and stacks"
          f" {mem['RssAnon'] / n:.0f}, mapped files {mem['RssFile'] / n:.0f}) | < 300 B |")
    print(f"| VmHWM | {mem['VmHWM'] / 2**20:.1f} MiB = {mem['VmHWM'] / n:.0f} B/binding | |")
    print(f"| VmRSS after two reloads | {mem_reload['VmRSS'] / 2**20:.1f} MiB ="
          f" {mem_reload['VmRSS'] / n:.0f} B/binding (VmHWM {mem_reload['VmHWM'] / n:.0f}) | |")
    return (per_poll == 1 and not other and cpu / wall < 0.01 and mem["VmRSS"] / n < 300)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default="build/dev")
    p.add_argument("--work", help="keep the fixtures (desired tree, state file) here")
    p.add_argument("--edits", type=int, default=7)
    p.add_argument("--window", type=float, default=60)
    p.add_argument("--reload-bindings", type=int, default=1_000_000)
    p.add_argument("--idle-bindings", type=int, default=100_000)
    p.add_argument("cases", nargs="*", default=["reload", "idle"])
    args = p.parse_args()
    args.build = build_dir(args.build)
    work = args.work or tempfile.mkdtemp(prefix="thingsync-daemon-bench-")
    ok = True
    try:
        for case in args.cases:
            n = args.reload_bindings if case == "reload" else args.idle_bindings
            wd = os.path.join(os.path.abspath(work), f"{case}-{n}")
            os.makedirs(wd, exist_ok=True)
            log(f"== {case} (work directory {wd}; load avg {os.getloadavg()[0]:.2f})")
            if case == "reload":
                ok &= case_reload(args, wd)
            elif case == "idle":
                ok &= case_idle(args, wd)
            else:
                sys.exit(f"unknown case {case}")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
