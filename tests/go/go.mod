module vmcontainer-go-test

go 1.21
