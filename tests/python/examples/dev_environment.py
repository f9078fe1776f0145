"""The dev environment: fetch the image, boot it with this project, run its tests."""
import sys
from typing import Optional

from vmcontainer.devenv import DevOps, detect_test_command


def show(done: int, total: Optional[int]) -> None:
    print(f"\r{done >> 20} of {(total or 0) >> 20} MiB", end="", file=sys.stderr)


dev = DevOps()  # configured by $VMCONTAINER_HOME/config.yaml
if not dev.is_installed():
    dev.install(progress=show)  # verified, resumable; Ctrl-C stops it
print("tests:", detect_test_command("."))
dev.boot(project=".", memory=4096)  # `core-dev`, project at /app
st = dev.status()
print(st.image_version, st.container_id, st.ssh_port, st.uptime_secs)
sys.exit(dev.test())  # .core/test.yaml or detection; exit code of the tests
