#!/usr/bin/env python3
"""Time to first byte of a streamed process (`Manager.spawn`) against the
buffered exec (`Manager.exec`, transport ssh) and a bare `ssh` to the same
guest, in one run, interleaved, with medians (the machine is shared:
compare within a run).

The command prints one line, then sleeps 1 s: a streamed process delivers
the line at once, the buffered exec only when the command ends.

Prints, per round kind, the median time to first byte (TTFB) and to the
end, and the ratio to the bare-ssh baseline; also `true` run to its end
through spawn+wait vs exec.

Usage: bench/spawn_bench.py [--rounds N] [--home DIR --id ID]
Needs the `vmcontainer` Python module importable (e.g. the dist/ wheel in
a venv, or PYTHONPATH at a development build) and VMCONTAINER_TEST_GUEST
(or tests/guest/build.sh) unless --home/--id name a running container.
"""
import argparse, os, shutil, statistics, subprocess, tempfile, time

import vmcontainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CMD = ["sh", "-c", "echo first; sleep 1; echo last"]


def guest_dir():
    g = os.environ.get("VMCONTAINER_TEST_GUEST")
    if g:
        return g
    out = subprocess.run(["bash", os.path.join(REPO, "tests/guest/build.sh")],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def spawn_round(m, cid):
    t0 = time.monotonic()
    p = m.spawn(cid, CMD)
    first = next(iter(p.stdout))
    ttfb = time.monotonic() - t0
    assert first.startswith(b"first"), first
    p.stdout.read()
    assert p.wait() == 0
    return ttfb, time.monotonic() - t0


def exec_round(m, cid):
    t0 = time.monotonic()
    r = m.exec(cid, CMD, transport="ssh")
    assert r.exit_code == 0 and r.stdout.startswith(b"first")
    t = time.monotonic() - t0
    return t, t  # the first byte is seen when it returns


def ssh_round(port, key, known):
    t0 = time.monotonic()
    p = subprocess.Popen(
        ["ssh", "-F", "none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", f"UserKnownHostsFile={known}", "-o", "LogLevel=ERROR", "-i", key,
         "-p", str(port), "root@127.0.0.1", "echo first; sleep 1; echo last"],
        stdout=subprocess.PIPE)
    p.stdout.readline()
    ttfb = time.monotonic() - t0
    p.stdout.read()
    assert p.wait() == 0
    return ttfb, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--home")
    ap.add_argument("--id")
    a = ap.parse_args()
    tmp = None
    if a.home and a.id:
        m, cid = vmcontainer.Manager(a.home), a.id
    else:
        tmp = tempfile.mkdtemp(prefix="vmc-spawn-bench")
        g = guest_dir()
        m = vmcontainer.Manager(tmp)
        cid = m.run(os.path.join(g, "vmtest-kernel"), memory=256,
                    ssh_key=os.path.join(g, "id_ed25519")).id
    try:
        c = m.wait_ready(cid, timeout=240)
        known = os.path.join(tempfile.gettempdir(), f"spawn-bench-known-{os.getpid()}")
        kinds = {
            "bare ssh (fresh connection)": lambda: ssh_round(c.ssh_port, c.ssh_key, known),
            "Manager.exec (buffered, ssh)": lambda: exec_round(m, cid),
            "Manager.spawn (streamed)": lambda: spawn_round(m, cid),
        }
        res = {k: [] for k in kinds}
        for _ in range(a.rounds):
            for k, f in kinds.items():
                res[k].append(f())
        base = statistics.median(t for t, _ in res["bare ssh (fresh connection)"])
        print(f"command: {' '.join(CMD)!r}; {a.rounds} rounds, medians")
        for k, v in res.items():
            ttfb = statistics.median(t for t, _ in v)
            end = statistics.median(e for _, e in v)
            print(f"  {k:32s} first byte {ttfb * 1000:7.0f} ms ({ttfb / base:4.2f}x bare ssh)"
                  f"   end {end * 1000:7.0f} ms")
        t_spawn, t_exec = [], []
        for _ in range(a.rounds):
            t0 = time.monotonic(); p = m.spawn(cid, ["true"]); p.wait(); t_spawn.append(time.monotonic() - t0)
            t0 = time.monotonic(); m.exec(cid, ["true"], transport="ssh"); t_exec.append(time.monotonic() - t0)
        s, e = statistics.median(t_spawn), statistics.median(t_exec)
        print(f"  `true` to its end: spawn+wait {s * 1000:.0f} ms, exec {e * 1000:.0f} ms ({s / e:.2f}x)")
        if os.path.exists(known):
            os.remove(known)
    finally:
        if tmp:
            m.remove(cid, force=True)
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
