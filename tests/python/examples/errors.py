"""Every error is a vmcontainer.VmContainerError; subclasses say which."""
import vmcontainer

m = vmcontainer.Manager()
try:
    m.stop("no-such-container")
except vmcontainer.NotFoundError as e:
    print(f"{e.kind}: {e}")  # not_found: container not found: no-such-container
try:
    m.run("missing.iso", memory=0)
except vmcontainer.InvalidInputError as e:  # also a ValueError
    print(e)
try:
    vmcontainer.apply_variables("hostname: ${HOSTNAME}\nkey: ${SSH_KEY}", {})
except vmcontainer.TemplateVariablesError as e:
    print(e.names)  # ['HOSTNAME', 'SSH_KEY']
