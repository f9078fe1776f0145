#!/usr/bin/env python3
"""What it costs the dev environment to follow the caller's project.

One dev VM (the test guest as the dev image) is booted from project A.
Then, interleaved over N rounds, with medians:
  - baseline: `dev test -- true` from A (the project shared at boot)
  - first call from a project the VM has never seen (shared on the spot:
    a bind mount inside QEMU's mount namespace, then `unshare -m` and a
    bind mount on /app in the guest)
  - a repeat call from that project (already shared)
and, for comparison, the alternative the per-project share replaces:
`dev boot --fresh` from another project (a reboot), timed once per round
of --reboots.

Usage: bench/dev_projects_bench.py [--rounds N] [--reboots N] [--cli PATH]
(build first: cargo build --release -p vmcontainer-cli; needs the test
guest: VMCONTAINER_TEST_GUEST or tests/guest/build.sh)
"""
import argparse, os, platform, statistics, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def guest_dir():
    d = os.environ.get("VMCONTAINER_TEST_GUEST")
    if d:
        return d
    out = subprocess.run(["bash", os.path.join(REPO, "tests/guest/build.sh")],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def image_name():
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return f"core-devops-linux-{arch}.qcow2"


def project(root, name):
    p = os.path.join(root, name)
    os.makedirs(p)
    with open(os.path.join(p, "marker"), "w") as f:
        f.write(name + "\n")
    return os.path.realpath(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reboots", type=int, default=2)
    ap.add_argument("--cli", default=os.path.join(REPO, "target/release/vmcontainer"))
    a = ap.parse_args()
    a.cli = os.path.abspath(a.cli)
    guest = guest_dir()
    work = tempfile.mkdtemp(prefix="vmc-devproj-")
    home = os.path.join(work, "home")
    os.makedirs(os.path.join(home, "images"))
    # An installed dev image: the file (and a go-container-style manifest).
    subprocess.run(["cp", os.path.join(guest, "vmtest.qcow2"),
                    os.path.join(home, "images", image_name())], check=True)
    with open(os.path.join(home, "config.yaml"), "w") as f:
        f.write(f"version: 1\ndev:\n  memory: 512\n  cpus: 1\n  ssh_key: {guest}/id_ed25519\n")
    env = dict(os.environ, VMCONTAINER_HOME=home)

    def dev(args, cwd):
        t0 = time.monotonic()
        out = subprocess.run([a.cli, "dev", *args], cwd=cwd, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"dev {args} in {cwd} failed: {out.stderr}")
        return time.monotonic() - t0, out.stdout

    projects = os.path.join(work, "projects")
    a_dir = project(projects, "A")
    try:
        dev(["boot", "--project", a_dir, "--timeout", "300"], a_dir)
        base, first, again = [], [], []
        for i in range(a.rounds):
            p = project(projects, f"P{i}")
            base.append(dev(["test", "--", "true"], a_dir)[0])
            t, _ = dev(["test", "--", "cat", "/app/marker"], p)
            first.append(t)
            again.append(dev(["test", "--", "true"], p)[0])
        reboot = []
        for i in range(a.reboots):
            p = project(projects, f"R{i}")
            reboot.append(dev(["boot", "--fresh", "--project", p, "--timeout", "300"], p)[0])
    finally:
        subprocess.run([a.cli, "dev", "stop"], env=env, capture_output=True)
        subprocess.run([a.cli, "rm", "-f", "core-dev"], env=env, capture_output=True)
        subprocess.run(["rm", "-rf", work])

    med = lambda xs: statistics.median(xs) * 1000
    print(f"== dev project switching ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
          f"{a.rounds} rounds, medians)")
    print(f"{'dev test from the boot project (baseline)':48} {med(base):8.0f} ms")
    print(f"{'first dev test from a new project':48} {med(first):8.0f} ms  x{med(first) / med(base):.2f}")
    print(f"{'repeat dev test from that project':48} {med(again):8.0f} ms  x{med(again) / med(base):.2f}")
    print(f"{'dev boot --fresh from another project (reboot)':48} {med(reboot):8.0f} ms  x{med(reboot) / med(base):.2f}")


if __name__ == "__main__":
    main()
