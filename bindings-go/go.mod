module github.com/host-uk/vmcontainer/bindings-go

go 1.19
