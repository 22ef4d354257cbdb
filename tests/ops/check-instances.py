#!/usr/bin/env python3
"""Two instances of thingsync@.service side by side, each converging its own fleet.

systemd is not PID 1 where the tests run, so this test does what systemd would do for
thingsync@acme.service and thingsync@globex.service, from the template as the build made it
(build/systemd/thingsync@.service), under a temporary root:
  - %i in every line becomes the instance name, and every absolute path the unit names (its
    config, credential sources, StateDirectory) is taken below the temporary root;
  - LoadCredential=NAME:PATH copies PATH to $CREDENTIALS_DIRECTORY/NAME, a directory of the
    instance's own; StateDirectory= is created and passed as $STATE_DIRECTORY;
  - ExecStart= runs with the built thingsync for the installed one, NOTIFY_SOCKET pointing at
    a datagram socket of this test's: READY=1 (sent after the first full reconcile) is awaited.
Each instance has a simulator of its own (a tenant's account), a desired state of its own and a
metrics port named in its config. Checked: both become ready; each simulator then holds exactly
its tenant's fleet and `thingsync plan` finds nothing to do for either; each instance wrote only
below its own state directory; no file is open in both processes at once; each serves /healthz
on its own port.
Not exercised here (tests/ops/check-units.sh covers the unit file itself, not its effects): the
sandbox (ProtectSystem=, the read-only desired-state mounts), DynamicUser=, the git-sync
template, the restart and watchdog logic.

Usage: check-instances.py UNIT_FILE THINGSYNC_BIN THINGSYNC_SIM_BIN      Exit 0: all passed.
Secrets (tokens, fleet keys, derived passwords) are registered with the secrets audit when
THINGSYNC_TEST_ARTIFACTS is set, and the daemons' output and state files are recorded there.
"""
import base64
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

INSTANCES = {"acme": 7, "globex": 5}  # instance name -> number of devices in its fleet
TIMEOUT = 60  # seconds for READY=1 (a first pass over a few devices takes well under one)

failures = 0


def fail(msg):
    global failures
    failures += 1
    print(f"FAIL: {msg}", file=sys.stderr)


def ok(msg):
    print(f"ok: {msg}")


# ---- the secrets audit's recording side (tests/support/artifacts.hpp) -------------------
ARTIFACTS = os.environ.get("THINGSYNC_TEST_ARTIFACTS")


def register_secret(kind, value):
    if not ARTIFACTS:
        return
    os.makedirs(ARTIFACTS, exist_ok=True)
    with open(os.path.join(ARTIFACTS, "secrets"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(f"{kind}\t{value.encode().hex()}\n")


def record_file(path, name):
    if not ARTIFACTS or not os.path.isfile(path):
        return
    files = os.path.join(ARTIFACTS, "files")
    os.makedirs(files, exist_ok=True)
    shutil.copyfile(path, os.path.join(files, f"check-instances.{os.getpid()}.{name}"))


# ---- password derivation (README, "Password derivation"), to register what the sims get ---
UPPER, LOWER, DIGIT, SPECIAL = ("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz",
                                "0123456789", "-.")
ALPHABET = UPPER + LOWER + DIGIT + SPECIAL


def derive(key, device):
    mac = hmac.new(key, device.encode(), hashlib.sha256).digest()
    chars = [ALPHABET[b % 64] for b in mac[:28]]
    chars += [LOWER[mac[28] % 26], UPPER[mac[29] % 26], DIGIT[mac[30] % 10], SPECIAL[mac[31] % 2]]
    return "".join(chars)


# ---- the unit, rendered as systemd would for one instance ---------------------------------
def unit_settings(text, instance):
    """[(key, value)] of the unit's lines, %i replaced (the names used here need no escaping)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.append((key, value.replace("%i", instance)))
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sim(sim_bin, client_id, client_secret, workdir):
    err = open(os.path.join(workdir, "sim.err"), "w")
    proc = subprocess.Popen([sim_bin, "--listen", "127.0.0.1:0",
                             "--oauth-client", f"{client_id}:{client_secret}"],
                            stdout=subprocess.PIPE, stderr=err, text=True)
    first = proc.stdout.readline()  # "listening on http://127.0.0.1:PORT", or EOF if it died
    m = re.match(r"listening on (http://\S+)", first)
    if not m:
        raise RuntimeError(f"thingsync-sim did not start: {first!r}")
    return proc, m.group(1)


def fetch_token(base_url, client_id, client_secret):
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": client_id,
                                   "client_secret": client_secret, "audience": "thingsync-test"})
    with urllib.request.urlopen(base_url + "/oauth2/token", form.encode(), timeout=5) as r:
        token = json.load(r)["access_token"]
    register_secret("api token", token)
    return token


def list_devices(base_url, token):
    """Device IDs of every binding the simulator holds (following `next` links)."""
    devices, url = [], base_url + "/mqtt/bindings?limit=100"
    while url:
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=5) as r:
            page = json.load(r)
        devices += [b["deviceId"] for b in page.get("content", page.get("items", []))]
        nxt = page.get("next") or page.get("links", {}).get("next")
        url = None if not nxt else (nxt if nxt.startswith("http") else base_url + nxt)
    return devices


def open_files(pid):
    """Paths of the regular files and directories a process has open."""
    paths = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("/") and not target.startswith("/dev/"):
            paths.add(target)
    return paths


def main():
    unit_file, ts_bin, sim_bin = sys.argv[1:4]
    with open(unit_file) as f:
        template = f.read()
    tmp = tempfile.mkdtemp(prefix="thingsync-instances.")
    root = os.path.join(tmp, "root")
    procs, inst = [], {}
    try:
        # Each tenant: a simulator (its account), its credentials, desired state and config.
        for name, count in INSTANCES.items():
            work = os.path.join(tmp, name)
            os.makedirs(work)
            client_secret, key = secrets.token_urlsafe(24), secrets.token_urlsafe(36)
            register_secret("client secret", client_secret)
            register_secret("fleet key", key)
            sim, url = start_sim(sim_bin, name, client_secret, work)
            procs.append(sim)
            devices = [f"imei:35026680{INSTANCES[name]:02d}{i:05d}" for i in range(count)]
            for d in devices:
                register_secret("derived password", derive(key.encode(), d))
            settings = unit_settings(template, name)
            values = lambda k: [v for key_, v in settings if key_ == k]  # noqa: E731
            exec_start = values("ExecStart")[0].split()
            config = exec_start[exec_start.index("--config") + 1]
            state_dir = "/var/lib/" + values("StateDirectory")[0]
            creds = dict(v.split(":", 1) for v in values("LoadCredential"))
            # The operator's files, at the paths the unit names (below the temporary root).
            for cred, src in creds.items():
                os.makedirs(os.path.dirname(root + src), mode=0o700, exist_ok=True)
                content = {"fleet-key": key, "client-secret": client_secret}[cred]
                with open(root + src, "w") as f:
                    f.write(content + "\n")
            # The desired state: where thingsync-git-sync@NAME would clone it.
            fleet = f"{root}/var/lib/thingsync-git/{name}/fleet"
            os.makedirs(fleet)
            with open(os.path.join(fleet, "fleet.yaml"), "w") as f:
                f.write("defaults:\n  password:\n    derive:\n"
                        "      keyFile: ${CREDENTIALS_DIRECTORY}/fleet-key\nbindings:\n")
                f.writelines(f"  - deviceId: {d}\n" for d in devices)
            port = free_port()
            os.makedirs(os.path.dirname(root + config), exist_ok=True)
            with open(root + config, "w") as f:
                f.write(f"api: {{baseUrl: \"{url}\"}}\n"
                        f"auth: {{oauth2: {{tokenUrl: \"{url}/oauth2/token\", clientId: {name},\n"
                        "  clientSecretFile: \"${CREDENTIALS_DIRECTORY}/client-secret\",\n"
                        "  audience: thingsync-test}}\n"
                        f"desiredState: {{path: \"{fleet}\"}}\n"
                        "sync: {mode: reconcile, pollInterval: 1s}\n"
                        f"state: {{path: \"{root}{state_dir}/state.json\"}}\n"
                        f"metrics: {{listen: \"127.0.0.1:{port}\"}}\n")
            inst[name] = dict(secret=client_secret, url=url, devices=devices, config=root + config,
                              state_dir=root + state_dir, creds=creds, port=port,
                              exec_start=exec_start, work=work)

        snapshot = {os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs}

        # What systemd does at start: credentials copied, StateDirectory made, ExecStart run.
        for name, i in inst.items():
            cred_dir = f"{root}/run/credentials/thingsync@{name}.service"
            os.makedirs(cred_dir, mode=0o700)
            for cred, src in i["creds"].items():
                shutil.copyfile(root + src, os.path.join(cred_dir, cred))
            os.makedirs(i["state_dir"], mode=0o700)
            argv = [ts_bin] + i["exec_start"][1:]
            argv[argv.index("--config") + 1] = i["config"]
            notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            notify.bind(os.path.join(i["work"], "notify"))
            notify.settimeout(TIMEOUT)
            env = dict(os.environ, CREDENTIALS_DIRECTORY=cred_dir, STATE_DIRECTORY=i["state_dir"],
                       NOTIFY_SOCKET=os.path.join(i["work"], "notify"))
            out = open(os.path.join(i["work"], "run.out"), "w")
            err = open(os.path.join(i["work"], "run.err"), "w")
            i["proc"] = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
            procs.append(i["proc"])
            i["notify"] = notify
        for name, i in inst.items():
            try:
                while b"READY=1" not in i["notify"].recv(4096).split(b"\n"):
                    pass
                ok(f"thingsync@{name}: READY=1 (ExecStart: {' '.join(i['exec_start'])})")
            except socket.timeout:
                fail(f"thingsync@{name}: no READY=1 within {TIMEOUT} s")

        # Each tenant's account holds exactly its fleet; plan finds nothing to do.
        for name, i in inst.items():
            held = sorted(list_devices(i["url"], fetch_token(i["url"], name, i["secret"])))
            if held == sorted(i["devices"]):
                ok(f"thingsync@{name}: its simulator holds its {len(held)} devices and no others")
            else:
                fail(f"thingsync@{name}: its simulator holds {held}, want {i['devices']}")
            env = dict(os.environ, CREDENTIALS_DIRECTORY=f"{root}/run/credentials/thingsync@{name}.service")
            plan = subprocess.run([ts_bin, "plan", "--config", i["config"]], env=env,
                                  capture_output=True, text=True)
            if plan.returncode == 0:
                ok(f"thingsync@{name}: plan finds nothing to do")
            else:
                fail(f"thingsync@{name}: plan exits {plan.returncode}: {plan.stdout}{plan.stderr}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{i['port']}/healthz", timeout=5) as r:
                    ok(f"thingsync@{name}: /healthz {r.status} on its port {i['port']}")
            except OSError as e:
                fail(f"thingsync@{name}: /healthz on port {i['port']}: {e}")

        # No file in common: none open in both at once, and each wrote only below its state dir.
        a, b = (open_files(i["proc"].pid) for i in inst.values())
        shared = a & b
        if shared:
            fail(f"files open in both instances: {sorted(shared)}")
        else:
            ok(f"no file open in both instances ({len(a)} and {len(b)} open)")
        written = {os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs} - snapshot
        for name, i in inst.items():
            mine = sorted(p for p in written if p.startswith(i["state_dir"] + "/"))
            if any(p.endswith("/state.json") for p in mine):
                ok(f"thingsync@{name} wrote {[os.path.relpath(p, root) for p in mine]}")
            else:
                fail(f"thingsync@{name}: no state.json below {i['state_dir']}: {mine}")
        strays = sorted(os.path.relpath(p, root) for p in written if not any(
            p.startswith(i["state_dir"] + "/") or
            p.startswith(f"{root}/run/credentials/thingsync@{n}.service/")
            for n, i in inst.items()))
        if strays:
            fail(f"written outside the instances' state directories: {strays}")
        else:
            ok("every file written is below one instance's state directory")

        # A clean stop, as systemctl stop does.
        for name, i in inst.items():
            i["proc"].terminate()
            rc = i["proc"].wait(timeout=30)
            if rc != 0:
                fail(f"thingsync@{name}: exit {rc} on SIGTERM")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        for name, i in inst.items():
            for f in ("run.out", "run.err", "sim.err"):
                record_file(os.path.join(i["work"], f), f"{name}.{f}")
            for f in sorted(os.listdir(i["state_dir"])) if os.path.isdir(i["state_dir"]) else []:
                record_file(os.path.join(i["state_dir"], f), f"{name}.{f}")
            if failures:
                with open(os.path.join(i["work"], "run.err")) as f:
                    tail = f.read().splitlines()[-10:]
                print(f"thingsync@{name} stderr (last lines):", *tail, sep="\n  ", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)

    if failures:
        print(f"{failures} check(s) failed", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
