package main

import (
	"strings"
	"testing"
)

func TestListeningAddr(t *testing.T) {
	log := `{"level":"WARN","msg":"DEV MODE: no token key is configured"}
not json at all
{"level":"INFO","msg":"listening","addr":"127.0.0.1:41234"}
`
	addr, err := listeningAddr(strings.NewReader(log))
	if err != nil || addr != "127.0.0.1:41234" {
		t.Fatalf("got %q, %v", addr, err)
	}
	if _, err := listeningAddr(strings.NewReader(`{"msg":"bye"}` + "\n")); err == nil {
		t.Fatal("a log that ends without the line gave an address")
	}
}
