"""LinuxKit templates: list, inspect variables, fill in."""
import vmcontainer

for t in vmcontainer.list_templates():
    print(f"{t.name:<12} {t.description} {t.path or '(built in)'}")
required, defaults = vmcontainer.extract_variables(vmcontainer.get_template("core-dev"))
print(required, defaults)  # ['SSH_KEY'] {'CPUS': '2', ...}
yaml = vmcontainer.apply_template(
    "core-dev", {"SSH_KEY": "ssh-ed25519 AAAAC3Nza... me@host", "MEMORY": "4096"}
)
hv = vmcontainer.detect_hypervisor()
accel, why = hv.accel()
print(hv.name, accel, why, vmcontainer.detect_image_format("guest.qcow2"))
