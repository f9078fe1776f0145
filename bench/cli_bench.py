#!/usr/bin/env python3
"""Benchmarks of the vmcontainer CLI against bare baselines, in one run.

Prints, with medians over several rounds:
  - `vmcontainer run -d` to the guest's ready line vs. the same QEMU command
    started by hand (ratio)
  - repeated `vmcontainer exec ID true` vs. a fresh plain `ssh ... true`
  - log-follow delivery latency (a line appended to the log until
    `vmcontainer logs -f` prints it)
  - `vmcontainer ps --json` with 1,000 containers in the state file
  - peak RSS of the CLI for `run -d` and `ps`

Usage: bench/cli_bench.py [--rounds N]   (builds nothing: run
`cargo build --release -p vmcontainer-cli` first, or pass --cli PATH)
"""
import argparse, json, os, shutil, socket, statistics, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READY = b"VMTEST READY"


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


def peak_rss(cmd, env):
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.execve(cmd[0], cmd, env)
    _, status, ru = os.wait4(pid, 0)
    if status != 0:
        raise SystemExit(f"{cmd} failed with {status}")
    return ru.ru_maxrss  # KiB on Linux


def wait_for(path, needle, deadline_s=240):
    t0 = time.monotonic()
    while time.monotonic() - t0 < deadline_s:
        try:
            with open(path, "rb") as f:
                if needle in f.read():
                    return time.monotonic()
        except FileNotFoundError:
            pass
        time.sleep(0.005)
    raise SystemExit(f"{needle!r} never appeared in {path}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cli", default=os.path.join(REPO, "target/release/vmcontainer"))
    a = ap.parse_args()
    cli = a.cli
    guest = sh(["bash", os.path.join(REPO, "tests/guest/build.sh")]).stdout.decode().split()[-1]
    key = os.path.join(guest, "id_ed25519")
    image = os.path.join(guest, "vmtest-kernel")
    home = tempfile.mkdtemp(prefix="vmcb")
    env = dict(os.environ, VMCONTAINER_HOME=home)
    vmc = lambda *args: sh([cli, *args], env=env).stdout.decode().strip()
    results = {}

    # 1. run -d → ready line, vs the identical QEMU command by hand.
    ours, bare = [], []
    for r in range(a.rounds):
        t0 = time.monotonic()
        cid = vmc("run", "-d", "--ssh-key", key, image)
        log = os.path.join(home, "logs", f"{cid}.log")
        ours.append(wait_for(log, READY) - t0)
        c = json.loads(vmc("inspect", cid))[0]
        cmdline = open(f"/proc/{c['pid']}/cmdline", "rb").read().split(b"\0")[:-1]
        vmc("stop", cid)
        # Replay the exact command (same sockets, pid file and log path).
        os.truncate(log, 0)
        t0 = time.monotonic()
        subprocess.run(cmdline, check=True)
        bare.append(wait_for(log, READY) - t0)
        pid = int(open(os.path.join(c["runtime_dir"], "hypervisor.pid")).read())
        os.kill(pid, 15)
        while os.path.exists(f"/proc/{pid}") and b") Z" not in open(f"/proc/{pid}/stat", "rb").read():
            time.sleep(0.01)
        vmc("rm", cid)
    results["boot_to_ready_s"] = (statistics.median(ours), statistics.median(bare))

    # 2. exec latency (master connection) vs fresh ssh.
    cid = vmc("run", "-d", "--ssh-key", key, image)
    vmc("wait", cid)
    c = json.loads(vmc("inspect", cid))[0]
    port = c["ssh_port"]
    vmc("exec", cid, "true")
    ex, plain = [], []
    for _ in range(20):
        t0 = time.monotonic(); vmc("exec", cid, "true"); ex.append(time.monotonic() - t0)
        t0 = time.monotonic()
        sh(["ssh", "-i", key, "-p", str(port), "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "root@127.0.0.1", "true"])
        plain.append(time.monotonic() - t0)
    results["exec_true_s"] = (statistics.median(ex), statistics.median(plain))

    # 3. follow delivery latency.
    log = os.path.join(home, "logs", f"{cid}.log")
    f = subprocess.Popen([cli, "logs", "-f", cid], env=env, stdout=subprocess.PIPE)
    time.sleep(0.5)
    lat = []
    for i in range(20):
        marker = f"bench-mark-{i}".encode()
        t0 = time.monotonic()
        with open(log, "ab") as w:
            w.write(marker + b"\n")
        while True:
            line = f.stdout.readline()
            if marker in line:
                lat.append(time.monotonic() - t0)
                break
        time.sleep(0.05)
    f.kill()
    results["follow_latency_s"] = (statistics.median(lat), max(lat))
    vmc("rm", "-f", cid)

    # 4/5. ps with 1,000 containers; peak RSS.
    rss_run = peak_rss([cli, "run", "-d", "--ssh-key", key, image], env)
    vmc("rm", "-f", json.loads(vmc("ps", "-a", "--json"))[0]["id"])
    big = tempfile.mkdtemp(prefix="vmcps")
    st = {"containers": {}}
    for i in range(1000):
        cid = f"{i:08x}"
        st["containers"][cid] = {"id": cid, "name": f"c{i}", "image": "/img.iso", "status": "stopped",
                                 "pid": 0, "started_at": "2025-01-01T00:00:00Z", "ports": {"8080": 80},
                                 "memory": 1024, "cpus": 1, "ssh_port": 2222}
    json.dump(st, open(os.path.join(big, "containers.json"), "w"))
    benv = dict(os.environ, VMCONTAINER_HOME=big)
    ps = []
    for _ in range(10):
        t0 = time.monotonic(); sh([cli, "ps", "-a", "--json"], env=benv); ps.append(time.monotonic() - t0)
    results["ps_json_1000_s"] = statistics.median(ps)
    rss_ps = peak_rss([cli, "ps", "-a", "--json"], benv)

    o, b = results["boot_to_ready_s"]
    print(f"run -d to ready line:   {o:.2f} s  vs bare QEMU {b:.2f} s   ratio {o / b:.2f}")
    o, b = results["exec_true_s"]
    print(f"exec true (median):     {o * 1000:.1f} ms vs fresh ssh {b * 1000:.1f} ms   ratio {o / b:.2f}")
    m, mx = results["follow_latency_s"]
    print(f"logs -f delivery:       median {m * 1000:.1f} ms, max {mx * 1000:.1f} ms")
    print(f"ps --json, 1000 ctrs:   {results['ps_json_1000_s'] * 1000:.1f} ms")
    print(f"peak RSS:               run -d {rss_run / 1024:.1f} MiB, ps (1000) {rss_ps / 1024:.1f} MiB")
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(big, ignore_errors=True)


if __name__ == "__main__":
    main()
