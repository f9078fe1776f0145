#!/usr/bin/env python3
"""How fast every error path of issue 9 reports, through the real CLI.

Each case sets up one bad input in a fresh home (no VM is booted) and
times the command to its one-line error, median of a few rounds, against
the CLI doing nothing (`--version`) in the same run. Target: under 1 s
each. `dev install` against a server that never answers is bounded by
VMCONTAINER_HTTP_TIMEOUT (20 s by default); it is measured with 0.5 s.

Usage: bench/error_paths.py [--rounds N] [--cli PATH]
(builds nothing: run `cargo build --release -p vmcontainer-cli` first).
"""
import argparse, json, os, shutil, socket, statistics, subprocess, tempfile, threading, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def record(cid, **kw):
    r = {"id": cid, "name": f"n-{cid}", "image": "/i.iso", "status": "stopped", "pid": 0,
         "started_at": "2025-01-01T00:00:00Z"}
    r.update(kw)
    return r


def state(home, text):
    with open(os.path.join(home, "containers.json"), "w") as f:
        f.write(text if isinstance(text, str) else json.dumps({"containers": text}))


def fifo(path):
    os.mkfifo(path)
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cli", default=os.path.join(REPO, "target/release/vmcontainer"))
    a = ap.parse_args()
    scratch = tempfile.mkdtemp(prefix="vmcerr")
    iso = os.path.join(scratch, "fake.iso")
    with open(iso, "wb") as f:
        f.write(b"\0" * 0x8001 + b"CD001" + b"\0" * 100)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    held = []
    threading.Thread(target=lambda: [held.append(silent.accept()) for _ in range(1000)], daemon=True).start()
    port = silent.getsockname()[1]

    def templates(home, files):
        d = os.path.join(home, "linuxkit")
        os.makedirs(d)
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)

    # (label, setup(home) -> None, argv, extra env)
    cases = [
        ("--version (baseline)", None, ["--version"], {}),
        ("run: image is a FIFO", lambda h: fifo(os.path.join(h, "img.iso")), ["run", "-d", "{h}/img.iso"], {}),
        ("run: image is /dev/zero", None, ["run", "-d", "/dev/zero"], {}),
        ("run: image is a directory", None, ["run", "-d", "{h}"], {}),
        ("run: empty .iso", lambda h: open(os.path.join(h, "e.iso"), "w").close(), ["run", "-d", "{h}/e.iso"], {}),
        ("run: garbage .iso", lambda h: open(os.path.join(h, "g.iso"), "wb").write(b"x" * 65536),
         ["run", "-d", "{h}/g.iso"], {}),
        ("run: --ssh-key /tmp", None, ["run", "-d", "--ssh-key", "/tmp", iso], {}),
        ("run: -p 8080:80:90:100", None, ["run", "-d", "-p", "8080:80:90:100", iso], {}),
        ("run: 100k-char --name", None, ["run", "-d", "--name", "n" * 100_000, iso], {}),
        ("run: --name is another's ID", lambda h: state(h, {"0a0a0a0a": record("0a0a0a0a")}),
         ["run", "-d", "--name", "0a0a0a0a", iso], {}),
        ("run: --var MEMORY=abc", lambda h: templates(h, {"t.yml": b"m: ${MEMORY:-1}\n"}),
         ["run", "-d", "--template", "t", "--var", "MEMORY=abc"], {}),
        ("run: nested ${A:-${B}}", lambda h: templates(h, {"t.yml": b"v: ${A:-${B}}\n"}),
         ["run", "-d", "--template", "t"], {}),
        ("templates: non-UTF-8 file", lambda h: templates(h, {"bad.yml": b"\xff\xfe", "ok.yml": b"# ok\n"}),
         ["templates"], {}),
        ("ps: state file is a FIFO", lambda h: fifo(os.path.join(h, "containers.json")), ["ps"], {}),
        ("ps: state file is a symlink", lambda h: os.symlink("/etc/hostname", os.path.join(h, "containers.json")),
         ["ps"], {}),
        ("ps: duplicate key", lambda h: state(h, '{"containers": {"0a0a0a0a": %s, "0a0a0a0a": %s}}'
                                              % (json.dumps(record("0a0a0a0a")), json.dumps(record("0a0a0a0a")))),
         ["ps"], {}),
        ("ps: damaged + unknown status", lambda h: state(h, {"../../x": record("../../x"),
                                                             "0a0a0a0a": record("0a0a0a0a", status="paused", name=None)}),
         ["ps", "-a"], {}),
        ("rm: damaged record", lambda h: state(h, {"../../x": record("../../x")}), ["rm", "../../x"], {}),
        ("logs -f: stopped, no log", lambda h: state(h, {"0a0a0a0a": record("0a0a0a0a")}),
         ["logs", "-f", "0a0a0a0a"], {}),
        ("dev status: config is a FIFO", lambda h: fifo(os.path.join(h, "config.yaml")), ["dev", "status"], {}),
        ("dev install: silent server (0.5 s limit)",
         lambda h: open(os.path.join(h, "config.yaml"), "w").write(
             f"images:\n  source: cdn\n  cdn:\n    url: http://127.0.0.1:{port}/x\n"),
         ["dev", "install"], {"VMCONTAINER_HTTP_TIMEOUT": "0.5"}),
    ]
    rows = []
    for label, setup, argv, extra in cases:
        times = []
        for _ in range(a.rounds):
            home = tempfile.mkdtemp(prefix="h", dir=scratch)
            if setup:
                setup(home)
            env = dict(os.environ, VMCONTAINER_HOME=home, CORE_IMAGES_DIR=os.path.join(home, "images"),
                       VMCONTAINER_LINUXKIT="/nonexistent", **extra)
            args = [x.replace("{h}", home) for x in argv]
            t0 = time.monotonic()
            p = subprocess.run([a.cli, *args], env=env, capture_output=True, timeout=60)
            times.append(time.monotonic() - t0)
            last = p.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        rows.append((label, statistics.median(times), max(times), p.returncode, last[0][:90]))
    base = rows[0][1]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {a.rounds} rounds each")
    print(f"{'case':<40}{'median':>9}{'max':>9}{'x --version':>12}  exit  message")
    worst = 0.0
    for label, med, mx, code, msg in rows:
        print(f"{label:<40}{med * 1000:>7.0f}ms{mx * 1000:>7.0f}ms{med / base:>11.1f}x  {code:>4}  {msg}")
        worst = max(worst, med)
    print(f"slowest median: {worst * 1000:.0f} ms ({'under' if worst < 1 else 'OVER'} the 1 s target)")
    shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
