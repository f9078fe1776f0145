module example.com/go-hello

go 1.19

require github.com/host-uk/vmcontainer/bindings-go v0.1.0

// Until the module is published, use the checkout next to this directory.
replace github.com/host-uk/vmcontainer/bindings-go => ../../bindings-go
