package testutil

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// FreeGossipAddr returns a 127.0.0.1 address whose port is free for TCP and UDP,
// where nothing answers: its UDP port stays bound until release is called
// (or the test ends), so that a node binding port 0 meanwhile cannot be
// given it (memberlist binds TCP, then UDP on the same port, and tries
// another port when UDP is taken) and find only itself at its seed.
//
// The port is drawn below the kernel's ephemeral range, so that no socket
// of another test can take its TCP side before the node binds it: an
// outgoing connection's local port, or a listener on port 0, comes from
// that range only (a process started by the test, which cannot inherit a
// listener, binds the port some time after this returns).
func FreeGossipAddr(t testing.TB) (addr string, release func()) {
	t.Helper()
	lo, hi := portsBelowEphemeral()
	for range 200 {
		port := lo + rand.IntN(hi-lo)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue // taken
		}
		u, err := net.ListenPacket("udp", addr)
		_ = l.Close()
		if err == nil {
			release := sync.OnceFunc(func() { _ = u.Close() })
			t.Cleanup(release)
			return addr, release
		}
	}
	t.Fatal("no free port for TCP and UDP below the ephemeral range")
	return "", nil
}

// portsBelowEphemeral returns the ports [lo, hi) to draw gossip ports from:
// from 10000 up to the start of the kernel's ephemeral range (Linux's
// ip_local_port_range; 32768 where it cannot be read).
func portsBelowEphemeral() (lo, hi int) {
	lo, hi = 10000, 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	var first, last int
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &first, &last); err == nil && first > lo+1000 {
		hi = first
	}
	return lo, hi
}
