#!/usr/bin/env python3
"""Registry throughput of vmcontainer against curl, in one run.

Starts Debian's `docker-registry` (the CNCF distribution registry) on a free
loopback port with filesystem storage in a temporary directory, makes an
image of random bytes (default 1 GiB, .raw), then for several interleaved
rounds measures:
  - `vmcontainer push IMAGE REF` (hashes the file, uploads it in one
    streamed PATCH, then the config and manifest) to a fresh repository
    vs. curl uploading the same blob with its digest already known
    (POST, then one monolithic PUT ?digest=...);
  - `vmcontainer pull REF` into a fresh home (manifest, config, the blob
    through the verified downloader, sha256 checked, installed atomically)
    vs. `curl -o FILE` of the same blob from the same registry.
Prints medians in MiB/s and the ratio vmcontainer/curl (goal >= 0.9).

Usage: bench/registry_bench.py [--size-mib N] [--rounds N] [--cli PATH]
(builds nothing: run `cargo build --release -p vmcontainer-cli` first, or
pass --cli PATH). Needs docker-registry and curl (scripts/deps.sh).
"""
import argparse, hashlib, json, os, shutil, socket, statistics, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_registry(tmp):
    port = free_port()
    cfg = os.path.join(tmp, "registry.yml")
    with open(cfg, "w") as f:
        f.write(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {tmp}/storage\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
        )
    log = open(os.path.join(tmp, "registry.log"), "w")
    proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("docker-registry did not start; see " + log.name)
            time.sleep(0.05)


def timed(cmd, env=None):
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.monotonic() - t0


def curl_upload(host, repo, path, digest):
    """POST an upload, then one monolithic PUT of the file with its digest."""
    t0 = time.monotonic()
    out = subprocess.run(
        ["curl", "-sS", "-f", "-X", "POST", "-D", "-", "-o", "/dev/null",
         f"http://{host}/v2/{repo}/blobs/uploads/"],
        check=True, capture_output=True, text=True).stdout
    loc = next(l.split(":", 1)[1].strip() for l in out.splitlines()
               if l.lower().startswith("location:"))
    if loc.startswith("/"):
        loc = f"http://{host}{loc}"
    sep = "&" if "?" in loc else "?"
    subprocess.run(
        ["curl", "-sS", "-f", "-X", "PUT", "-H", "Content-Type: application/octet-stream",
         "-T", path, "-o", "/dev/null", f"{loc}{sep}digest={digest}"],
        check=True)
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cli", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target")), "release", "vmcontainer"))
    a = ap.parse_args()
    if not os.access(a.cli, os.X_OK):
        raise SystemExit(f"{a.cli} not found: cargo build --release -p vmcontainer-cli, or --cli PATH")
    tmp = tempfile.mkdtemp(prefix="vmc-regbench-")
    proc = None
    try:
        proc, host = start_registry(tmp)
        image = os.path.join(tmp, "bench.raw")
        h = hashlib.sha256()
        with open(image, "wb") as f:
            for _ in range(a.size_mib):
                chunk = os.urandom(1 << 20)
                h.update(chunk)
                f.write(chunk)
        digest = "sha256:" + h.hexdigest()
        size = a.size_mib * (1 << 20)
        env = dict(os.environ)
        for k in ("REGISTRY_AUTH", "VMCONTAINER_REGISTRY_TOKEN",
                  "VMCONTAINER_REGISTRY_USER", "VMCONTAINER_REGISTRY_PASSWORD"):
            env.pop(k, None)
        env["DOCKER_CONFIG"] = os.path.join(tmp, "docker")
        push, cpush, pull, cpull = [], [], [], []
        for i in range(a.rounds):
            home = os.path.join(tmp, f"home{i}")
            env["VMCONTAINER_HOME"] = home
            ref = f"{host}/bench/vm{i}:1"
            push.append(timed([a.cli, "push", image, ref], env))
            cpush.append(curl_upload(host, f"bench/curl{i}", image, digest))
            shutil.rmtree(home, ignore_errors=True)
            env["VMCONTAINER_HOME"] = os.path.join(tmp, f"pullhome{i}")
            pull.append(timed([a.cli, "pull", ref], env))
            shutil.rmtree(env["VMCONTAINER_HOME"], ignore_errors=True)
            out = os.path.join(tmp, "curl.out")
            cpull.append(timed(["curl", "-sS", "-f", "-o", out,
                                f"http://{host}/v2/bench/vm{i}/blobs/{digest}"]))
            if os.path.getsize(out) != size:
                raise SystemExit("curl fetched a short blob")
            os.unlink(out)
        mib = size / (1 << 20)

        def rate(ts):
            return mib / statistics.median(ts)
        res = {
            "size_mib": a.size_mib, "rounds": a.rounds,
            "push_mib_s": round(rate(push), 1), "curl_upload_mib_s": round(rate(cpush), 1),
            "push_ratio": round(rate(push) / rate(cpush), 2),
            "pull_mib_s": round(rate(pull), 1), "curl_download_mib_s": round(rate(cpull), 1),
            "pull_ratio": round(rate(pull) / rate(cpull), 2),
            "load_average": os.getloadavg()[0],
        }
        print(f"image {a.size_mib} MiB, {a.rounds} rounds, medians (load average {res['load_average']:.1f}):")
        print(f"  push  {res['push_mib_s']:8.1f} MiB/s   curl upload   {res['curl_upload_mib_s']:8.1f} MiB/s   ratio {res['push_ratio']:.2f}")
        print(f"  pull  {res['pull_mib_s']:8.1f} MiB/s   curl download {res['curl_download_mib_s']:8.1f} MiB/s   ratio {res['pull_ratio']:.2f}")
        print(json.dumps(res))
    finally:
        if proc:
            proc.terminate()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
