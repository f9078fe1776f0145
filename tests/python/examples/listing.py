"""List containers, like `vmcontainer ps -a`."""
from datetime import datetime, timezone

import vmcontainer

m = vmcontainer.Manager()
now = datetime.now(timezone.utc)
for c in m.list():
    up = int((now - c.started_at).total_seconds()) if c.status == "running" else 0
    ports = ", ".join(f"{host}->{guest}" for host, guest in c.ports.items())
    print(f"{c.id}  {c.name:<16} {c.status:<8} {up:>6}s  {c.memory} MB  {ports}")
