#!/usr/bin/env python3
"""Benchmarks of snapshots and warm starts, against a cold boot in the same run.

Prints, with medians over several rounds and the machine's load:
  - `run --snapshot` to exec-ready vs `run` (cold boot) to exec-ready of the
    same image (the ratio; the goal is <= 0.15)
  - `snapshot create` time (and how long the source was paused) and size
    for a 256 MiB and a 1 GiB guest
  - host memory (RSS and PSS) of N clones resumed from one snapshot, vs one
    cold-booted VM
  - how the VM state is best written: QMP `migrate` to an fd we pass
    (what vmcontainer does) vs `exec:cat > FILE`, on a paused guest

"Exec-ready" is the first `vmcontainer exec ID true` returning 0 after `run`
was started (for the cold boot that includes waiting for SSH and pinning
the host key; for the clone the key is known from the snapshot).

Usage: bench/snapshot_bench.py [--rounds N] [--clones N] [--cli PATH]
(builds nothing: run `cargo build --release -p vmcontainer-cli` first)
"""
import argparse, array, json, os, shutil, socket, statistics, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


def med(xs):
    return statistics.median(xs)


def load():
    return "load %.1f %.1f %.1f" % os.getloadavg()


def memory(pid):
    """Rss and Pss (and Pss by kind) of a process, in MiB."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, rest = line.partition(":")
            if k in ("Rss", "Pss", "Pss_Anon", "Pss_File", "Pss_Shmem"):
                out[k] = int(rest.split()[0]) / 1024
    return out


class Qmp:
    """Just enough QMP to time state saves by hand."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.f = self.s.makefile("r")
        self.read()
        self.cmd("qmp_capabilities")

    def read(self):
        while True:
            msg = json.loads(self.f.readline())
            if "event" not in msg:
                return msg

    def cmd(self, name, fd=None, **args):
        msg = json.dumps({"execute": name, "arguments": args} if args else {"execute": name})
        if fd is None:
            self.s.sendall(msg.encode())
        else:
            self.s.sendmsg([msg.encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
        r = self.read()
        if "error" in r:
            raise SystemExit(f"QMP {name}: {r['error']}")
        return r["return"]

    def save(self, uri, fd=None):
        t0 = time.monotonic()
        self.cmd("stop")
        if fd is not None:
            self.cmd("getfd", fd=fd, fdname="bench")
            os.close(fd)
        self.cmd("migrate", uri=uri)
        while self.cmd("query-migrate").get("status") not in ("completed", "failed"):
            time.sleep(0.002)
        self.cmd("cont")
        return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clones", type=int, default=4)
    ap.add_argument("--cli", default=os.path.join(REPO, "target/release/vmcontainer"))
    a = ap.parse_args()
    guest = sh(["bash", os.path.join(REPO, "tests/guest/build.sh")]).stdout.decode().split()[-1]
    key = os.path.join(guest, "id_ed25519")
    image = os.path.join(guest, "vmtest.qcow2")
    home = tempfile.mkdtemp(prefix="vmcsb")
    env = dict(os.environ, VMCONTAINER_HOME=home)
    vmc = lambda *args: sh([a.cli, *args], env=env).stdout.decode().strip()
    print(f"# {sh(['qemu-system-x86_64', '--version']).stdout.decode().splitlines()[0]}; {load()}")
    try:
        run(a, vmc, key, image, home)
    finally:
        for c in json.loads(vmc("ps", "-a", "--json")):
            subprocess.run([a.cli, "rm", "-f", c["id"]], env=env, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
    print(f"# {load()}")


def exec_ready(vmc, *run_args):
    t0 = time.monotonic()
    cid = vmc("run", "-d", *run_args)
    vmc("exec", cid, "true")
    return cid, time.monotonic() - t0


def run(a, vmc, key, image, home):
    # 1. Cold boot vs warm start, interleaved so load changes hit both.
    source, cold, warm = None, [], []
    for r in range(a.rounds):
        cid, t = exec_ready(vmc, "--memory", "256", "--ssh-key", key, image)
        cold.append(t)
        if source is None:
            source = cid
            vmc("snapshot", "create", source, "bench")
        else:
            vmc("rm", "-f", cid)
        cid, t = exec_ready(vmc, "--snapshot", "bench")
        warm.append(t)
        vmc("rm", "-f", cid)
        print(f"round {r + 1}: cold {cold[-1]:.2f}s, warm {warm[-1]:.2f}s ({load()})")
    print(
        f"exec-ready: cold boot {med(cold):.2f}s, run --snapshot {med(warm):.2f}s, "
        f"ratio {med(warm) / med(cold):.3f} (goal <= 0.15)"
    )

    # 2. snapshot create: time and size by guest memory.
    for mem, cid in (("256", source), ("1024", None)):
        if cid is None:
            cid, _ = exec_ready(vmc, "--memory", mem, "--ssh-key", key, image)
        times, sizes, pauses = [], [], []
        for r in range(a.rounds):
            t0 = time.monotonic()
            vmc("snapshot", "create", cid, f"size-{mem}-{r}")
            times.append(time.monotonic() - t0)
            s = json.loads(vmc("snapshot", "ls", "--json"))
            (snap,) = [x for x in s if x["name"] == f"size-{mem}-{r}"]
            d = snap["path"]
            sizes.append(snap["size"])
            pauses.append(snap["source_pause_ms"])
            files = {f: os.stat(os.path.join(d, f)) for f in os.listdir(d)}
            vmc("snapshot", "rm", f"size-{mem}-{r}")
        detail = ", ".join(
            f"{f} {st.st_blocks * 512 / 2**20:.1f} MiB" + (f" of {st.st_size / 2**20:.0f}" if f == "memory.raw" else "")
            for f, st in sorted(files.items())
        )
        print(
            f"snapshot create, {mem} MiB guest: {med(times):.2f}s (min {min(times):.2f}, max {max(times):.2f}; "
            f"source paused {med(pauses):.0f} ms), "
            f"size {med(sizes) / 2**20:.1f} MiB on disk ({detail})"
        )
        if cid != source:
            vmc("rm", "-f", cid)

    # 3. Memory of N clones from one snapshot vs one cold-booted VM.
    base = memory(json.loads(vmc("inspect", source))[0]["pid"])
    clones = []
    for i in range(a.clones):
        cid, _ = exec_ready(vmc, "--snapshot", "bench")
        clones.append(cid)
    time.sleep(2)
    mems = [memory(json.loads(vmc("inspect", c))[0]["pid"]) for c in clones]
    pss = sum(m["Pss"] for m in mems)
    print(
        f"memory: cold-booted source RSS {base['Rss']:.0f} MiB PSS {base['Pss']:.0f} MiB; "
        f"{a.clones} clones RSS {med([m['Rss'] for m in mems]):.0f} MiB each, PSS total {pss:.0f} MiB "
        f"({pss / a.clones:.0f} MiB each: anon {med([m['Pss_Anon'] for m in mems]):.0f}, "
        f"file {med([m['Pss_File'] for m in mems]):.0f}); "
        f"{a.clones} cold VMs would be ~{a.clones * base['Pss']:.0f} MiB"
    )
    for c in clones:
        vmc("rm", "-f", c)

    # 4. Saving the state: fd (ours) vs exec:cat, on the paused source.
    q = Qmp(json.loads(vmc("inspect", source))[0]["qmp_socket"])
    q.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 40})
    out = os.path.join(home, "bench.stream")
    fd_t, exec_t = [], []
    for _ in range(a.rounds):
        fd_t.append(q.save("fd:bench", os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)))
        exec_t.append(q.save(f"exec:cat > {out}"))
    size = os.path.getsize(out) / 2**20
    os.unlink(out)
    print(
        f"state save of the 256 MiB guest ({size:.0f} MiB stream): fd {med(fd_t) * 1000:.0f} ms, "
        f"exec:cat {med(exec_t) * 1000:.0f} ms"
    )
    vmc("rm", "-f", source)
    vmc("snapshot", "rm", "bench")


if __name__ == "__main__":
    main()
