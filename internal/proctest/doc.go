// Package proctest runs real roomd processes for tests: the binary built
// from this tree, nodes on loopback ports they pick themselves, joined by
// gossip; a test kills (SIGKILL), freezes (SIGSTOP, SIGCONT), stops
// (SIGTERM) and restarts them. It is imported by tests only.
package proctest
