"""Print a container's serial console as the guest writes it."""
import sys

import vmcontainer

m = vmcontainer.Manager()
print(m.logs(sys.argv[1]), end="")  # everything so far, as one string
with m.logs(sys.argv[1], follow=True) as lines:  # Ctrl-C to stop
    for line in lines:  # ends when the container stops
        print(line)
