#!/usr/bin/env python3
"""Scale benchmark: the CLI against a state file of 100,000 containers.

No VM is booted. Prints the median wall time of each command (the lookups,
listings and error paths a user hits) against two bare baselines measured
in the same run: the CLI doing nothing (`--version`, process start) and
Python's `json.load` of the same file (the cost of reading it at all).

Target (issue 9): every command here under 0.5 s at 100,000 records.

Usage: bench/state_scale.py [--records N] [--rounds N] [--cli PATH]...
(builds nothing: run `cargo build --release -p vmcontainer-cli` first).
Several --cli give one column each, e.g. to compare two builds.
"""
import argparse, json, os, resource, shutil, statistics, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_state(path, n):
    """n stopped records shaped like the ones `run` writes, IDs in order."""
    recs = {}
    for i in range(n):
        cid = f"{i * 2654435761 % (1 << 32):08x}"
        recs[cid] = {
            "id": cid,
            "name": f"c{i}",
            "image": f"/images/guest-{i % 7}.qcow2",
            "status": "stopped",
            "pid": 0,
            "started_at": "2025-03-04T10:11:12.123456789Z",
            "ports": {"8080": 80} if i % 3 == 0 else {},
            "memory": 1024,
            "cpus": 1,
            "ssh_port": 40000 + i % 20000,
            "hypervisor": "qemu",
            "accel": "tcg",
            "format": "qcow2",
            "ssh_port_auto": True,
            "stopped_at": "2025-03-04T11:11:12Z",
        }
    with open(path, "w") as f:
        # Sorted, as vmcontainer and go-container (encoding/json) write it.
        json.dump({"containers": dict(sorted(recs.items()))}, f, indent=2)
    os.chmod(path, 0o600)
    return list(recs)


def cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd, env, ok_codes=(0, 1)):
    """(wall seconds, CPU seconds) of one run. On a shared machine the CPU
    time is the steadier figure; the wall time is what a user waits."""
    c0, t0 = cpu(), time.monotonic()
    p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt, dc = time.monotonic() - t0, cpu() - c0
    if p.returncode not in ok_codes:
        raise SystemExit(f"{cmd}: exit {p.returncode}: {p.stderr.decode()[:500]}")
    return dt, dc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cli", action="append")
    a = ap.parse_args()
    clis = a.cli or [os.path.join(REPO, "target/release/vmcontainer")]
    home = tempfile.mkdtemp(prefix="vmcscale")
    state = os.path.join(home, "containers.json")
    ids = make_state(state, a.records)
    pristine = open(state, "rb").read()
    size_mb = len(pristine) / 1e6
    env = dict(os.environ, VMCONTAINER_HOME=home)
    mid = ids[len(ids) // 2]
    # A file that passes the image checks, so `run` gets as far as the state.
    iso = os.path.join(home, "fake.iso")
    with open(iso, "wb") as f:
        f.write(b"\0" * 0x8001 + b"CD001" + b"\0" * 100)

    def json_load():
        with open(state) as f:
            json.load(f)

    base = []
    for _ in range(a.rounds):
        t0 = time.monotonic(); json_load(); base.append(time.monotonic() - t0)
    py_load = statistics.median(base)

    cases = [
        ("--version (process start)", ["--version"], True),
        ("ps -a --json", ["ps", "-a", "--json"], True),
        ("ps", ["ps"], True),
        ("inspect ID", ["inspect", mid], True),
        ("inspect NAME", ["inspect", f"c{len(ids) // 2}"], True),
        ("inspect ambiguous prefix", ["inspect", "a"], False),
        ("rm unknown", ["rm", "ffffffff"], False),
        ("stop unknown", ["stop", "ffffffff"], False),
        ("start unknown", ["start", "ffffffff"], False),
        ("logs unknown", ["logs", "ffffffff"], False),
        ("exec unknown", ["exec", "ffffffff", "true"], False),
        ("stop stopped", ["stop", mid], False),
        ("run --name taken", ["run", "-d", "--name", "c1", iso], False),
        ("run bad image", ["run", "-d", "/no/such.iso"], False),
        ("rm ID (rewrites the file)", None, True),
    ]
    table = {}
    for cli in clis:
        col = {}
        for label, args, _ in cases:
            walls, cpus = [], []
            for r in range(a.rounds):
                if args is None:
                    victim = ids[r + 1]
                    dt, dc = timed([cli, "rm", victim], env, ok_codes=(0,))
                else:
                    dt, dc = timed([cli, *args], env)
                walls.append(dt)
                cpus.append(dc)
            col[label] = (statistics.median(walls), statistics.median(cpus))
        with open(state, "wb") as f:
            f.write(pristine)
        table[cli] = col

    load = os.getloadavg()[0]
    print(f"state file: {a.records} records, {size_mb:.1f} MB; python json.load {py_load * 1000:.0f} ms; "
          f"load average {load:.1f} on {os.cpu_count()} CPUs")
    heads = [c if len(c) <= 30 else "…" + c[-29:] for c in clis]
    print(f"{'command':<28}" + "".join(f"{h:>32}" for h in heads))
    print(f"{'':<28}" + "".join(f"{'wall ms   cpu ms  wall/json.load':>32}" for _ in clis))
    worst = 0.0
    for label, _, _ in cases:
        row = f"{label:<28}"
        for cli in clis:
            w, c = table[cli][label]
            row += f"{w * 1000:>13.0f}{c * 1000:>9.0f}{w / py_load:>9.2f}x"
        if label != "rm ID (rewrites the file)":
            worst = max(worst, table[clis[-1]][label][0])
        print(row)
    if len(clis) > 1:
        first, last = table[clis[0]], table[clis[-1]]
        ratios = [last[l][1] / first[l][1] for l, a_, _ in cases if a_ != ["--version"] and first[l][1] > 0.05]
        print(f"CPU time, last vs first column: median ratio {statistics.median(ratios):.2f}")
    print(f"slowest read/error path (last column, wall): {worst * 1000:.0f} ms "
          f"({'under' if worst < 0.5 else 'OVER'} the 0.5 s target)")
    shutil.rmtree(home)


if __name__ == "__main__":
    main()
