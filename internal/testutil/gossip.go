package testutil

import (
	"net"
	"sync"
	"testing"
)

// FreeGossipAddr returns a 127.0.0.1 address whose port is free for TCP and UDP,
// where nothing answers: its UDP port stays bound until release is called
// (or the test ends), so that a node binding port 0 meanwhile cannot be
// given it (memberlist binds TCP, then UDP on the same port, and tries
// another port when UDP is taken) and find only itself at its seed.
func FreeGossipAddr(t testing.TB) (addr string, release func()) {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		_ = l.Close()
		if err == nil {
			release := sync.OnceFunc(func() { _ = u.Close() })
			t.Cleanup(release)
			return addr, release
		}
	}
	t.Fatal("no free port for TCP and UDP")
	return "", nil
}
