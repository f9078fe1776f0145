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
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

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
        json.dump({"containers": recs}, f, indent=2)
    os.chmod(path, 0o600)
    return list(recs)


def timed(cmd, env, ok_codes=(0, 1)):
    t0 = time.monotonic()
    p = subprocess.run(cmd, env=env, capture_output=True)
    dt = time.monotonic() - t0
    if p.returncode not in ok_codes:
        raise SystemExit(f"{cmd}: exit {p.returncode}: {p.stderr.decode()[:500]}")
    return dt, p


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
        ("run --name taken", ["run", "-d", "--name", "c1", "/dev/null"], False),
        ("run bad image", ["run", "-d", "/no/such.iso"], False),
        ("rm ID (rewrites the file)", None, True),
    ]
    table = {}
    for cli in clis:
        col = {}
        for label, args, _ in cases:
            times = []
            for r in range(a.rounds):
                if args is None:
                    victim = ids[r + 1]
                    dt, _ = timed([cli, "rm", victim], env, ok_codes=(0,))
                else:
                    dt, _ = timed([cli, *args], env)
                times.append(dt)
            col[label] = statistics.median(times)
        with open(state, "wb") as f:
            f.write(pristine)
        table[cli] = col

    print(f"state file: {a.records} records, {size_mb:.1f} MB; python json.load {py_load * 1000:.0f} ms")
    heads = [os.path.basename(os.path.dirname(os.path.dirname(c))) + "/" + os.path.basename(c) for c in clis]
    print(f"{'command':<30}" + "".join(f"{h[-24:]:>26}" for h in heads) + "   (median ms; x = ratio to json.load)")
    worst = 0.0
    for label, _, _ in cases:
        row = f"{label:<30}"
        for cli in clis:
            t = table[cli][label]
            row += f"{t * 1000:>16.0f} ms {t / py_load:>5.1f}x"
        worst = max(worst, table[clis[-1]][label])
        print(row)
    print(f"slowest (last column): {worst * 1000:.0f} ms  ({'under' if worst < 0.5 else 'OVER'} the 0.5 s target)")
    shutil.rmtree(home)


if __name__ == "__main__":
    main()
