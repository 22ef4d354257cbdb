#!/usr/bin/env python3
"""The one-shot commands and the daemon's start at fleet scale, against thingsync-sim (issue 18).

One fleet of N bindings (default 1,000,000) in 1,000 desired-state files, passwords derived,
the sim preloaded with the same devices (--seed N --random-seed 42). In this order:

  plan-adoption   `thingsync plan` with no state file (a first adoption: every binding is
                  an update, its password unknown). Wall time, peak RSS (the child's
                  ru_maxrss). Target: peak < 400 MB.
  apply-adoption  `thingsync apply --yes` of that plan (PUTs every binding once): converges
                  the fleet. Wall time and peak RSS, for the record.
  plan-converged  `thingsync plan` on the converged fleet. Target: < 3 s wall, < 300 MB.
  run             `thingsync run` with the state file: start -> /readyz answers 200 (the first
                  full pass done; target < 4 s); then --edits one-file edits (10 passwords
                  each; the time from the file's rename to the 10th PUT, median: the reload
                  latency); then idle VmRSS; VmHWM over all of it (target < 400 MB).

Each figure is printed as `RESULT <name> <measured> <target>` for bench/run.sh, and the whole
as a table. Wall times on a busy machine are mostly waiting for a core: the load average is
printed, and each command's CPU time (utime + stime) beside its wall time.

Usage: bench/engine/fleet_bench.py [--build build/dev] [--bindings 1000000] [--edits 3]
                                   [--work DIR]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_bench import (Daemon, RequestLog, Sim, build_dir, edit_once, http,  # noqa: E402
                          imei_files, log, write_config, write_fleet)

MB = 1_000_000
# The sim runs on core 0 (daemon_bench.Sim); thingsync may use both cores, as it would on a
# 2-core machine of its own: its desired-state load and the remote list run side by side.
THINGSYNC_CORES = "0,1"


# Runs a command and reports its exit code, wall and CPU time and peak RSS. A child forked from
# this process would inherit its peak RSS (Linux keeps the larger of the old and the new image's
# high-water mark across exec, and this process held the sim's listing): so a small launcher is
# exec'd first, and the command forked from it.
LAUNCHER = """import os, sys, time
t0 = time.time()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, ru = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    print(os.waitstatus_to_exitcode(status), time.time() - t0, ru.ru_utime + ru.ru_stime,
          ru.ru_maxrss * 1024, file=f)
"""


def run_command(build, wd, args, case=""):
    """Runs `thingsync ARGS` (on THINGSYNC_CORES); returns (exit code, wall s, cpu s, peak RSS bytes).

    For a profile: FLEET_WRAP="heaptrack -o /tmp/ht-{case}" FLEET_WRAP_CASE=plan-converged
    (several: comma-separated) runs those cases' commands under the wrapper, {case} replaced
    by the case's name (their figures are then the wrapper's)."""
    wrap = os.environ.get("FLEET_WRAP", "").replace("{case}", case).split() \
        if case and case in os.environ.get("FLEET_WRAP_CASE", "").split(",") else []
    cmd = ["taskset", "-c", THINGSYNC_CORES] + wrap + [
        os.path.join(build, "src/cli/thingsync")] + args + [
        "--config", os.path.join(wd, "config.yaml"), "--log-level", "warn"]
    usage = os.path.join(wd, "command.rusage")
    with open(os.path.join(wd, "command.out"), "w") as out, \
            open(os.path.join(wd, "command.err"), "w") as err:
        subprocess.run([sys.executable, "-c", LAUNCHER, usage] + cmd, stdout=out, stderr=err,
                       check=True)
    rc, wall, cpu, rss = open(usage).read().split()
    return int(rc), float(wall), float(cpu), int(rss)


def wait_ready_timed(daemon, timeout):
    """Start -> /readyz 200, polled every 20 ms; the daemon's start time is its Popen."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        daemon.check_alive()
        if http(f"http://127.0.0.1:{daemon.port}/readyz", timeout=10)[0] == 200:
            return time.time()
        time.sleep(0.02)
    sys.exit("the daemon did not become ready")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default="build/dev")
    p.add_argument("--bindings", type=int, default=1_000_000)
    p.add_argument("--edits", type=int, default=3)
    p.add_argument("--work", help="keep the fixtures here (the desired tree is reused)")
    args = p.parse_args()
    build = build_dir(args.build)
    n = args.bindings
    work = args.work or tempfile.mkdtemp(prefix="thingsync-fleet-bench-")
    wd = os.path.join(os.path.abspath(work), f"fleet-{n}")
    os.makedirs(wd, exist_ok=True)
    results = []  # (name, what, measured text, target text, ok)

    def result(name, what, value, unit, target_op, target):
        ok = value < target if target_op == "<" else value >= target
        results.append((name, what, f"{value:.2f} {unit}".strip(), f"{target_op} {target} {unit}",
                        ok))
        print(f"RESULT {name} {value:.3f} {target_op}{target}", flush=True)

    def record(name, what, value, unit):
        results.append((name, what, f"{value:.2f} {unit}", "", None))
        print(f"RESULT {name} {value:.3f} -", flush=True)

    sim = Sim(build, wd, n)
    daemon = None
    try:
        log(f"sim: {n:,} bindings seeded in {time.time() - sim.started:.1f} s")
        edited = write_fleet(wd, sim, n)
        write_config(wd, sim.url, "")
        for name in ("state.json", "state.json.journal", "state.json.lock"):
            if os.path.exists(os.path.join(wd, name)):
                os.remove(os.path.join(wd, name))
        log(f"load avg {os.getloadavg()[0]:.2f}")

        rc, wall, cpu, rss = run_command(build, wd, ["plan"], "plan-adoption")
        if rc != 2:
            sys.exit(f"plan (first adoption) exited {rc}: " + open(
                os.path.join(wd, "command.err")).read()[-2000:])
        log(f"plan, first adoption: {wall:.2f} s (cpu {cpu:.2f} s), peak RSS {rss / MB:.0f} MB")
        result("plan_adoption_peak_mb", "plan, first adoption: peak RSS", rss / MB, "MB", "<", 400)
        record("plan_adoption_wall_s", "plan, first adoption: wall", wall, "s")

        rc, wall, cpu, rss = run_command(build, wd, ["apply", "--yes"])
        if rc != 0:
            sys.exit(f"apply exited {rc}: " + open(os.path.join(wd, "command.err")).read()[-2000:])
        log(f"apply, first adoption: {wall:.2f} s (cpu {cpu:.2f} s), peak RSS {rss / MB:.0f} MB")
        record("apply_adoption_wall_s", f"apply, first adoption ({n:,} PUTs): wall", wall, "s")
        record("apply_adoption_peak_mb", "apply, first adoption: peak RSS", rss / MB, "MB")

        best = None
        for _ in range(3):
            rc, wall, cpu, rss = run_command(build, wd, ["plan"], "plan-converged")
            if rc != 0:
                sys.exit(f"plan (converged) exited {rc}: " + open(
                    os.path.join(wd, "command.out")).read()[-2000:])
            log(f"plan, converged: {wall:.2f} s (cpu {cpu:.2f} s), peak RSS {rss / MB:.0f} MB")
            best = (wall, cpu, rss) if best is None or wall < best[0] else best
        result("plan_converged_wall_s", "plan, converged: wall (best of 3)", best[0], "s", "<", 3)
        record("plan_converged_cpu_s", "plan, converged: CPU", best[1], "s")
        result("plan_converged_peak_mb", "plan, converged: peak RSS", best[2] / MB, "MB", "<", 300)

        t0 = time.time()
        daemon = Daemon(build, wd, cores=THINGSYNC_CORES)
        ready = wait_ready_timed(daemon, 600) - t0
        mem_ready = daemon.memory()
        log(f"run: ready after {ready:.2f} s, VmHWM {mem_ready['VmHWM'] / MB:.0f} MB")
        result("run_ready_s", "run: start -> ready (first full pass done)", ready, "s", "<", 4)
        reqlog = RequestLog(sim.log_path)
        devices = json.load(open(os.path.join(wd, "edited-devices.json")))
        lat = []
        for k in range(args.edits):
            r = edit_once(daemon, reqlog, edited, devices, k % 2 == 0)
            lat.append(r[0])
            log(f"edit {k + 1}: 10th PUT after {1000 * r[0]:.0f} ms ({r[1]} PUTs, {r[2]} failed)")
        if args.edits % 2:  # leave the fixture as written
            edit_once(daemon, reqlog, edited, devices, False)
        lat.sort()
        record("run_reload_10th_put_ms", f"run: one-file edit -> 10th PUT (median of {len(lat)})",
               1000 * lat[len(lat) // 2], "ms")
        time.sleep(2)
        mem = daemon.memory()
        record("run_idle_rss_mb", "run: idle VmRSS after the reloads", mem["VmRSS"] / MB, "MB")
        result("run_hwm_mb", "run: VmHWM (start, full pass, reloads)", mem["VmHWM"] / MB, "MB",
               "<", 400)
    finally:
        if daemon:
            daemon.stop()
        sim.stop()
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"fleet: {n:,} bindings in {imei_files(n)} files (load avg {os.getloadavg()[0]:.2f})")
    print("| figure | measured | target | |")
    print("| --- | --- | --- | --- |")
    for _, what, measured, target, ok in results:
        print(f"| {what} | {measured} | {target} | {'' if ok is None else 'pass' if ok else 'FAIL'} |")
    return 0 if all(ok is not False for *_, ok in results) else 1


if __name__ == "__main__":
    sys.exit(main())
