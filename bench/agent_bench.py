#!/usr/bin/env python3
"""Benchmarks of the guest agent transport against SSH and the raw agent, in
one run, with medians (the machine is shared: compare within a run).

Prints:
  - `vmcontainer exec ID true` over the agent vs (a) a fresh `ssh ... true`,
    (b) `vmcontainer exec` over the SSH master, (c) the floor: one raw
    guest-exec + guest-exec-status round trip from a minimal client holding
    the agent channel, all interleaved; then again with each guest alone
    (the other VM's QEMU paused with SIGSTOP)
  - readiness: `run -d` to `wait` returning, agent guest vs SSH guest
  - the cost of the virtio-serial ports (agent and data): QEMU start to the
    guest's ready line with and without them (the SSH guest, command
    replayed)
  - `cp` throughput in and out, agent and SSH, vs `scp -O` (the classic
    protocol: dropbear has no sftp server; the test guest carries scp) and
    a plain `ssh cat` stream
  - peak RSS of `vmcontainer cp` for a small and a large file (flat memory)

Usage: bench/agent_bench.py [--rounds N] [--cli PATH] [--big-mib N]
(needs GNU time, package `time`, for the peak RSS figures)
(build first: cargo build --release -p vmcontainer-cli)
"""
import argparse, base64, contextlib, fcntl, json, os, select, shutil, signal, statistics, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READY = b"VMTEST READY"


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


def timed(cmd, **kw):
    t0 = time.monotonic()
    sh(cmd, **kw)
    return time.monotonic() - t0


def med_ms(xs):
    return statistics.median(xs) * 1000


def peak_rss(cmd, env):
    """Peak RSS of `cmd` in MiB, from GNU time (a fork of this Python would
    count the interpreter's own pages)."""
    out = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], env=env, check=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return int(out.stderr.strip().splitlines()[-1]) / 1024


def wait_for(path, needle, deadline_s=300):
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


@contextlib.contextmanager
def paused(pid):
    """Stops a QEMU process (all its threads) for the block, then lets the
    guest catch up on its timers before the next block is measured."""
    os.kill(pid, signal.SIGSTOP)
    try:
        while open(f"/proc/{pid}/stat", "rb").read().rsplit(b") ", 1)[1][:1] != b"T":
            time.sleep(0.005)
        time.sleep(0.2)
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.5)


class RawAgent:
    """The floor: a minimal client on the container's agent channel."""

    def __init__(self, rd):
        # Opened without truncating: its first byte is vmcontainer's
        # hand-off mark ("c": the last session ended in step with the agent,
        # so the next may skip the sync), which this client keeps too.
        self.lock = open(os.path.join(rd, "qga.lock"), "r+b") if os.path.exists(os.path.join(rd, "qga.lock")) \
            else open(os.path.join(rd, "qga.lock"), "w+b")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        self.w = os.open(os.path.join(rd, "qga.in"), os.O_WRONLY)
        self.r = os.open(os.path.join(rd, "qga.out"), os.O_RDONLY | os.O_NONBLOCK)
        self.buf = b""
        os.write(self.w, b"\xff" + json.dumps({"execute": "guest-sync-delimited", "arguments": {"id": 4242}}).encode() + b"\n")
        self._until(b'{"return": 4242}')
        self.buf = b""

    def _until(self, token):
        while token not in self.buf:
            select.select([self.r], [], [], 5)
            try:
                self.buf += os.read(self.r, 1 << 16)
            except BlockingIOError:
                pass

    def call(self, cmd, args):
        os.write(self.w, json.dumps({"execute": cmd, "arguments": args}).encode() + b"\n")
        self._until(b"\n")
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)["return"]

    def exec_true(self):
        pid = self.call("guest-exec", {"path": "true", "capture-output": True})["pid"]
        while not self.call("guest-exec-status", {"pid": pid})["exited"]:
            pass

    def close(self):
        # Every reply was read: the next session may skip its handshake.
        os.pwrite(self.lock.fileno(), b"c", 0)
        os.close(self.w)
        os.close(self.r)
        self.lock.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--execs", type=int, default=30)
    ap.add_argument("--big-mib", type=int, default=256)
    ap.add_argument("--cli", default=os.path.join(REPO, "target/release/vmcontainer"))
    a = ap.parse_args()
    cli = a.cli
    guest = sh(["bash", os.path.join(REPO, "tests/guest/build.sh")]).stdout.decode().split()[-1]
    key = os.path.join(guest, "id_ed25519")
    ssh_img = os.path.join(guest, "vmtest-kernel")
    agent_img = os.path.join(guest, "vmtest-agent-kernel")
    home = tempfile.mkdtemp(prefix="vmab")
    env = dict(os.environ, VMCONTAINER_HOME=home)
    vmc = lambda *args: sh([cli, *args], env=env).stdout.decode().strip()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    out = {}

    # 1. Readiness: run -d to wait returning.
    ready = {"agent": [], "ssh": []}
    for _ in range(a.rounds):
        for kind, args in (("agent", [agent_img]), ("ssh", ["--ssh-key", key, ssh_img])):
            t0 = time.monotonic()
            cid = vmc("run", "-d", *args)
            vmc("wait", "--timeout", "300", cid)
            ready[kind].append(time.monotonic() - t0)
            vmc("rm", "-f", cid)

    # 2. The agent port's boot cost: replay the SSH guest's QEMU command
    #    with and without the agent's and the data port's arguments, to its
    #    ready line.
    cid = vmc("run", "-d", "--ssh-key", key, ssh_img)
    c = json.loads(vmc("inspect", cid))[0]
    cmdline = open(f"/proc/{c['pid']}/cmdline", "rb").read().split(b"\0")[:-1]
    vmc("stop", cid)
    log = os.path.join(home, "logs", f"{cid}.log")
    without = []
    for i, arg in enumerate(cmdline):
        if arg.startswith((b"pipe,id=qga0", b"pipe,id=data0", b"virtio-serial-pci", b"virtserialport")):
            without.pop()  # its -chardev/-device flag
            continue
        without.append(arg)
    boot = {"with": [], "without": []}
    pairs = (("with", cmdline), ("without", without))
    for r in range(2 * a.rounds):
        # Alternate which goes first, so drift in the machine's load and
        # caches falls on both.
        for kind, cmd in (pairs if r % 2 == 0 else pairs[::-1]):
            os.truncate(log, 0)
            t0 = time.monotonic()
            subprocess.run(cmd, check=True)
            boot[kind].append(wait_for(log, READY) - t0)
            pid = int(open(os.path.join(c["runtime_dir"], "hypervisor.pid")).read())
            os.kill(pid, 15)
            while os.path.exists(f"/proc/{pid}") and b") Z" not in open(f"/proc/{pid}/stat", "rb").read():
                time.sleep(0.01)
    vmc("rm", "-f", cid)

    # 3. exec latency, interleaved.
    aid = vmc("run", "-d", agent_img)
    sid = vmc("run", "-d", "--memory", str(max(1024, 3 * a.big_mib + 512)), "--ssh-key", key, ssh_img)
    vmc("wait", "--timeout", "300", aid)
    vmc("wait", "--timeout", "300", sid)
    port = json.loads(vmc("inspect", sid))[0]["ssh_port"]
    rd = json.loads(vmc("inspect", aid))[0]["runtime_dir"]
    # The options ssh and scp share (scp names the port -P).
    ssh_opts = ["-F", "none", "-i", key, "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ControlPath=none",
                "-o", "BatchMode=yes"]
    fresh_ssh = ["ssh", *ssh_opts, "-p", str(port), "root@127.0.0.1"]
    vmc("exec", aid, "true")
    vmc("exec", sid, "true")
    def agent_side(into):
        into["agent"].append(timed([cli, "exec", aid, "true"], env=env))
        raw = RawAgent(rd)
        t0 = time.monotonic()
        raw.exec_true()
        into["raw"].append(time.monotonic() - t0)
        raw.close()

    def ssh_side(into, fresh=True):
        if fresh:
            into["fresh_ssh"].append(timed(fresh_ssh + ["true"]))
        into["ssh_master"].append(timed([cli, "exec", sid, "true"], env=env))

    lat = {"agent": [], "fresh_ssh": [], "ssh_master": [], "raw": []}
    for i in range(a.execs):
        agent_side(lat)
        ssh_side(lat, fresh=i % 2 == 0)

    # 3b. The same, each guest alone: the other VM's QEMU is paused with
    #     SIGSTOP, in blocks that alternate, so each figure is taken the
    #     way one user with one VM sees it (under TCG an idle guest beside
    #     it still takes CPU from the one measured). Both sets are printed.
    pids = {k: json.loads(vmc("inspect", k))[0]["pid"] for k in (aid, sid)}
    alone = {"agent": [], "fresh_ssh": [], "ssh_master": [], "raw": []}
    per_block = max(1, a.execs // 3)
    for _ in range(3):
        with paused(pids[sid]):
            for _ in range(per_block):
                agent_side(alone)
        with paused(pids[aid]):
            for _ in range(per_block):
                ssh_side(alone)

    # 4. cp throughput, and the ssh cat stream as the baseline.
    work = tempfile.mkdtemp(prefix="vmabcp")
    mid = 32
    src = os.path.join(work, "f.bin")
    with open(src, "wb") as f:
        f.write(os.urandom(mid << 20))
    thr = {}
    for name, cid, tr in (("agent", aid, "agent"), ("ssh", sid, "ssh")):
        t_in = timed([cli, "cp", "--transport", tr, src, f"{cid}:/tmp/f.bin"], env=env)
        back = os.path.join(work, f"back-{name}.bin")
        t_out = timed([cli, "cp", "--transport", tr, f"{cid}:/tmp/f.bin", back], env=env)
        assert open(back, "rb").read() == open(src, "rb").read(), name
        thr[name] = (mid / t_in, mid / t_out)
        vmc("exec", cid, "rm", "-f", "/tmp/f.bin")
    with open(src, "rb") as f:
        t0 = time.monotonic()
        subprocess.run(fresh_ssh + ["cat > /tmp/c.bin"], stdin=f, check=True, capture_output=True)
        t_in = time.monotonic() - t0
    t0 = time.monotonic()
    got = subprocess.run(fresh_ssh + ["cat /tmp/c.bin"], check=True, capture_output=True).stdout
    t_out = time.monotonic() - t0
    assert len(got) == mid << 20
    thr["ssh_cat"] = (mid / t_in, mid / t_out)
    vmc("exec", sid, "rm", "-f", "/tmp/c.bin")
    scp = ["scp", "-O", "-q", *ssh_opts, "-P", str(port)]
    t_in = timed(scp + [src, "root@127.0.0.1:/tmp/p.bin"])
    back = os.path.join(work, "back-scp.bin")
    t_out = timed(scp + ["root@127.0.0.1:/tmp/p.bin", back])
    assert open(back, "rb").read() == open(src, "rb").read(), "scp"
    thr["scp"] = (mid / t_in, mid / t_out)
    vmc("exec", sid, "rm", "-f", "/tmp/p.bin")

    # 5. Memory stays flat: peak RSS of cp for a small and a large file.
    big = os.path.join(work, "big.bin")
    with open(big, "wb") as f:
        for _ in range(a.big_mib):
            f.write(os.urandom(1 << 20))
    rss = {
        "ssh_in_32": peak_rss([cli, "cp", "--transport", "ssh", src, f"{sid}:/tmp/s.bin"], env),
        "ssh_in_big": peak_rss([cli, "cp", "--transport", "ssh", big, f"{sid}:/tmp/b.bin"], env),
        "ssh_out_big": peak_rss([cli, "cp", "--transport", "ssh", f"{sid}:/tmp/b.bin", os.path.join(work, "b2.bin")], env),
        "agent_in_32": peak_rss([cli, "cp", "--transport", "agent", src, f"{aid}:/tmp/s.bin"], env),
        "agent_out_32": peak_rss([cli, "cp", "--transport", "agent", f"{aid}:/tmp/s.bin", os.path.join(work, "s2.bin")], env),
    }
    vmc("rm", "-f", aid, sid)
    shutil.rmtree(work, ignore_errors=True)

    for title, l in ((f"exec true, both VMs running, median of {a.execs}:", lat),
                     (f"exec true, each VM alone (the other paused), median of {3 * per_block}:", alone)):
        fr, ag = med_ms(l["fresh_ssh"]), med_ms(l["agent"])
        ms, raw = med_ms(l["ssh_master"]), med_ms(l["raw"])
        print(title)
        print(f"  vmcontainer exec (agent)       {ag:7.1f} ms")
        print(f"  (a) fresh ssh true             {fr:7.1f} ms   agent/fresh ssh = {ag / fr:.3f}  (goal <= 0.1)")
        print(f"  (b) vmcontainer exec (SSH)     {ms:7.1f} ms   agent/ssh master = {ag / ms:.2f}")
        print(f"  (c) raw exec+status round trip {raw:7.1f} ms   agent/raw = {ag / raw:.2f}  (goal <= 1.5)")
    print(f"readiness, run -d to wait (median of {a.rounds}): agent {statistics.median(ready['agent']):.2f} s, "
          f"SSH {statistics.median(ready['ssh']):.2f} s")
    w, wo = statistics.median(boot["with"]), statistics.median(boot["without"])
    print(f"boot to ready line with the agent port {w:.2f} s, without {wo:.2f} s (ratio {w / wo:.3f})")
    print(f"cp {mid} MiB, MiB/s in / out:")
    for k in ("agent", "ssh", "scp", "ssh_cat"):
        print(f"  {k:8} {thr[k][0]:6.2f} / {thr[k][1]:6.2f}")
    print("peak RSS of cp (MiB): " + ", ".join(f"{k} {v:.1f}" for k, v in rss.items()) + f"  (big = {a.big_mib} MiB)")
    print(f"load average at end: {os.getloadavg()}")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
