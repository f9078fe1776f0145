package vmcontainer

/*
#include <vmcontainer.h>
*/
import "C"

// Transport is how a call reaches the guest: the QEMU Guest Agent (no SSH
// server or key needed) or SSH. The zero value means TransportAuto.
type Transport string

// Transports.
const (
	// TransportAuto uses the guest agent when it answers and allows what
	// the call needs, else SSH; nothing runs twice.
	TransportAuto Transport = "auto"
	// TransportAgent uses the QEMU Guest Agent only.
	TransportAgent Transport = "agent"
	// TransportSSH uses SSH only.
	TransportSSH Transport = "ssh"
)

// code is t as a vmc_transport_t.
func (t Transport) code() (C.int, error) {
	switch t {
	case "", TransportAuto:
		return C.VMC_TRANSPORT_AUTO, nil
	case TransportAgent:
		return C.VMC_TRANSPORT_AGENT, nil
	case TransportSSH:
		return C.VMC_TRANSPORT_SSH, nil
	}
	return 0, invalid("transport", t, "expected auto, agent or ssh")
}

// transportOf is the Transport of a vmc_transport_t.
func transportOf(code C.int) Transport {
	switch code {
	case C.VMC_TRANSPORT_AGENT:
		return TransportAgent
	case C.VMC_TRANSPORT_SSH:
		return TransportSSH
	}
	return TransportAuto
}
