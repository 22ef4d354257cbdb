#!/usr/bin/env python3
"""Runs every ```sh block of README.md and docs/*.md, as a reader would.

Each file's blocks run in order, in one fresh sandbox: a temporary directory holding a copy of
examples/, with a thingsync-sim on 127.0.0.1 port 0 started for it (as the example config
expects one on 127.0.0.1:8080, the sandbox's examples/config.yaml points at this one instead,
and serves its metrics on port 0). The built thingsync and thingsync-sim come first on PATH.
Nothing else is set up: what a block needs (THINGSYNC_FLEET_KEY_FILE, say) the docs must set
in an earlier block. Exported variables and the working directory carry from one block to the
next, as in one shell session; standard input is /dev/null (no terminal).

A block may be preceded, on the lines right above its fence, by markers:

    <!-- not run: REASON -->         never run (needs root, systemd, a network, or would
                                      recurse into the build and test scripts); listed
    <!-- exit: N -->                  the block must exit N (default 0)
    <!-- needs: thingsync CMD [--FLAG] -->
                                      run only when the built thingsync has CMD (and FLAG in
                                      CMD --help); otherwise listed as skipped, with why

An unmarked block that fails fails the test. Under the secrets audit (THINGSYNC_TEST_ARTIFACTS)
every block's output is kept for the scan, and the example secrets are registered.

Usage: check-doc-commands.py SOURCE_DIR THINGSYNC THINGSYNC_SIM
"""

import glob
import hashlib
import hmac
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BLOCK_TIMEOUT = 30  # seconds
FENCE = re.compile(r"^```(sh|bash|shell)\s*$")
MARK = re.compile(r"^<!--\s*(not run|exit|needs):\s*(.*?)\s*-->\s*$")


def blocks_of(path):
    """[(line, markers, text)] of the shell blocks in a Markdown file."""
    lines = open(path, encoding="utf-8").read().splitlines()
    out = []
    i = 0
    while i < len(lines):
        if not FENCE.match(lines[i]):
            if lines[i].startswith("```"):  # another kind of block: skip it whole
                i += 1
                while i < len(lines) and not lines[i].startswith("```"):
                    i += 1
            i += 1
            continue
        markers = {}
        j = i - 1
        while j >= 0 and MARK.match(lines[j]):
            m = MARK.match(lines[j])
            markers[m.group(1)] = m.group(2)
            j -= 1
        end = i + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        out.append((i + 1, markers, "\n".join(lines[i + 1:end]) + "\n"))
        i = end + 1
    return out


# ---- the secrets audit ---------------------------------------------------------------------
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-."


def derive(key, canonical):
    """The derive password (README.md, "Password derivation")."""
    mac = hmac.new(key, canonical.encode(), hashlib.sha256).digest()
    chars = [ALPHABET[b % 64] for b in mac[:28]]
    chars += [ALPHABET[26 + mac[28] % 26], ALPHABET[mac[29] % 26], ALPHABET[52 + mac[30] % 10],
              "-."[mac[31] % 2]]
    return "".join(chars)


def canonical(device_id):
    d = device_id.strip().strip('"').lower()
    if d.startswith("urn:dev:"):
        d = d[len("urn:dev:"):]
    return d.rstrip(":")


def register_secrets(artifacts, src):
    secrets = os.path.join(src, "examples", "secrets")
    values = []
    for name in ("api-token", "fleet-key", "gateway-7.pass"):
        with open(os.path.join(secrets, name), "rb") as f:
            values.append(("doc example " + name, f.read().rstrip(b"\r\n")))
    key = values[1][1]
    for path in glob.glob(os.path.join(src, "examples", "desired-state", "**", "*.y*ml"),
                          recursive=True):
        for m in re.finditer(r"deviceId:\s*(\S+)", open(path, encoding="utf-8").read()):
            values.append(("doc example derived password",
                           derive(key, canonical(m.group(1))).encode()))
    os.makedirs(artifacts, exist_ok=True)
    import fcntl
    with open(os.path.join(artifacts, "secrets"), "a", encoding="ascii") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        for kind, value in values:
            f.write("%s\t%s\n" % (kind, value.hex()))
        fcntl.flock(f, fcntl.LOCK_UN)


# ---- running -------------------------------------------------------------------------------
class Sandbox:
    def __init__(self, src, sim, token):
        self.dir = tempfile.mkdtemp(prefix="thingsync-doc-")
        shutil.copytree(os.path.join(src, "examples"), os.path.join(self.dir, "examples"))
        self.sim_out = open(os.path.join(self.dir, ".sim.out"), "w+")
        self.sim = subprocess.Popen(
            [sim, "--listen", "127.0.0.1:0", "--token", token, "--seed", "5"],
            stdout=self.sim_out, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        url = None
        for _ in range(100):
            self.sim_out.seek(0)
            m = re.search(r"^listening on (\S+)", self.sim_out.read(), re.M)
            if m:
                url = m.group(1)
                break
            time.sleep(0.05)
        if not url:
            self.close()
            raise RuntimeError("thingsync-sim did not start")
        config = os.path.join(self.dir, "examples", "config.yaml")
        text = open(config, encoding="utf-8").read()
        text = text.replace("http://127.0.0.1:8080", url)
        text = re.sub(r"(listen:\s*)127\.0\.0\.1:\d+", r"\g<1>127.0.0.1:0", text)
        open(config, "w", encoding="utf-8").write(text)
        self.env_file = os.path.join(self.dir, ".env")
        self.cwd_file = os.path.join(self.dir, ".cwd")
        with open(self.cwd_file, "w") as f:
            f.write(self.dir)

    def run(self, text, path_dirs):
        """Runs one block; (exit status, output)."""
        script = os.path.join(self.dir, ".block.sh")
        with open(script, "w") as f:
            f.write('[ -f "%s" ] && . "%s"\n' % (self.env_file, self.env_file))
            f.write('cd "$(cat "%s")"\n' % self.cwd_file)
            f.write("trap 'export -p >\"%s\"; pwd >\"%s\"' EXIT\n"
                    % (self.env_file, self.cwd_file))
            f.write("set -eo pipefail\n")
            f.write(text)
        env = {k: v for k, v in os.environ.items() if not k.startswith("THINGSYNC_")}
        env["PATH"] = os.pathsep.join(path_dirs + [env.get("PATH", "/usr/bin:/bin")])
        env["HOME"] = self.dir
        log = os.path.join(self.dir, ".block.out")
        with open(log, "w") as out:
            proc = subprocess.Popen(["bash", "--noprofile", "--norc", script], cwd=self.dir,
                                    env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                rc = proc.wait(timeout=BLOCK_TIMEOUT)
            except subprocess.TimeoutExpired:
                rc = "timeout after %d s" % BLOCK_TIMEOUT
            try:  # whatever the block left running in the background
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        return rc, open(log, encoding="utf-8", errors="replace").read()

    def close(self):
        self.sim.terminate()
        try:
            self.sim.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.sim.kill()
        self.sim_out.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def has_feature(thingsync, need, cache):
    """Whether the built thingsync has what a needs: marker names; (bool, why not)."""
    words = need.split()
    if len(words) < 2 or words[0] != "thingsync":
        return False, "bad needs: marker '%s'" % need
    if need not in cache:
        r = subprocess.run([thingsync, words[1], "--help"], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
        # A command thingsync lacks gets the program's help, whose usage line does not name it.
        usage = re.search(r"^Usage: \S+ (\S+)", r.stdout, re.M)
        ok = (r.returncode == 0 and usage is not None and usage.group(1) == words[1]
              and all(re.search(r"(^|[\s,])%s\b" % re.escape(w), r.stdout) for w in words[2:]))
        cache[need] = (ok, "the built thingsync lacks '%s'" % " ".join(words[1:]))
    return cache[need]


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    src, thingsync, sim = (os.path.abspath(a) for a in sys.argv[1:])
    token = open(os.path.join(src, "examples", "secrets", "api-token")).read().strip()
    artifacts = os.environ.get("THINGSYNC_TEST_ARTIFACTS")
    if artifacts:
        register_secrets(artifacts, src)
    path_dirs = [os.path.dirname(thingsync), os.path.dirname(sim)]
    files = [os.path.join(src, "README.md")] + sorted(glob.glob(os.path.join(src, "docs", "*.md")))
    passed, failed, skipped = 0, 0, []
    features = {}
    started = time.monotonic()
    for path in files:
        name = os.path.relpath(path, src)
        blocks = blocks_of(path)
        runnable = [b for b in blocks if "not run" not in b[1]]
        sandbox = Sandbox(src, sim, token) if runnable else None
        try:
            for line, markers, text in blocks:
                where = "%s:%d" % (name, line)
                if "not run" in markers:
                    skipped.append((where, "not run: " + markers["not run"]))
                    continue
                if "needs" in markers:
                    ok, why = has_feature(thingsync, markers["needs"], features)
                    if not ok:
                        skipped.append((where, why))
                        continue
                want = int(markers.get("exit", "0"))
                t = time.monotonic()
                rc, output = sandbox.run(text, path_dirs)
                if artifacts:
                    os.makedirs(os.path.join(artifacts, "files"), exist_ok=True)
                    tag = re.sub(r"[^\w.-]", "_", where)
                    with open(os.path.join(artifacts, "files", "doc-commands." + tag + ".out"),
                              "w") as f:
                        f.write(output)
                if rc == want:
                    passed += 1
                    print("ok: %s (exit %d, %.1f s)" % (where, rc, time.monotonic() - t))
                else:
                    failed += 1
                    print("FAIL: %s: exit %s, want %d. The block:\n%s--- its output:\n%s---"
                          % (where, rc, want, text, output))
        finally:
            if sandbox:
                sandbox.close()
    for where, why in skipped:
        print("skipped: %s: %s" % (where, why))
    print("%.1f s" % (time.monotonic() - started))
    print("%d passed, %d failed, %d skipped" % (passed, failed, len(skipped)))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
