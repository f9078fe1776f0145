"""Boot an image, run commands in it over SSH, then remove it."""
import sys

import vmcontainer

image, key = sys.argv[1], sys.argv[2]  # e.g. guest.iso ~/.ssh/id_ed25519
m = vmcontainer.Manager()  # $VMCONTAINER_HOME, else ~/.core
c = m.run(image, name="demo", memory=512, ports={8080: 80}, ssh_key=key)
print(c.id, c.status, c.ssh_port, c.started_at.isoformat())
try:
    m.wait_ready(c.id, timeout=240)  # until the guest's SSH server answers
    r = m.exec(c.id, ["sh", "-c", "uname -a; echo oops >&2; exit 3"])
    print(r.exit_code, r.stdout.decode(), r.stderr.decode())
    m.stop(c.id, timeout=10.0)  # ACPI power-down, then SIGTERM, then SIGKILL
finally:
    m.remove(c.id, force=True)
