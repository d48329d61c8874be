// Package roomd runs a roomd node inside another Go program.
//
// New builds a node from a Config: the settings of `roomd serve` (the one
// table of docs/OPERATIONS.md, as Settings), a logger, and, optionally,
// in-process hook functions (Hooks) that the node calls where a standalone
// node would post to the application's backend (docs/PROTOCOL.md, "Hooks").
// The node is an http.Handler: mount it on the program's own server, at the
// root of a host or under a prefix with http.StripPrefix. Close stops it as
// SIGTERM stops the binary: /readyz answers 503 for drain_delay, a cluster
// member hands its rooms to the others, every connection gets bye with code
// shutdown, then the member leaves the cluster.
//
//	settings, err := roomd.ParseSettings([]byte("rooms:\n  history_size: 100\n"))
//	node, err := roomd.New(roomd.Config{Settings: settings, Hooks: &roomd.Hooks{Join: allowJoin}})
//	mux.Handle("/", node)
//	...
//	err = node.Close(ctx)
//
// A node is a cluster of one unless its settings give cluster.bind (and
// cluster.secret, and seeds in cluster.join): it then gossips with the
// other nodes, and they open peer links at GET /v1/peer on its handler, so
// a clustered node's handler must be served at the root of Config.Addr (or
// of cluster.advertise_http). Members lists the cluster; GossipAddr is
// what another node's cluster.join names.
//
// cmd/roomd builds its node with this package too, and adds what a process
// owns: flags and variables, signals, the listener and its TLS certificate.
//
// The package is the public way to build a node; it knows the engine
// packages' configurations and lifecycles, never their insides. Those
// packages (server, room, cluster, protocol, hooks) are importable today,
// and their APIs are not promised: the next step is to move server, room
// and cluster under internal/, leaving this package, hooks and protocol as
// the public surface.
package roomd
