// Command roomd runs a roomd node, and carries the tools around it.
//
//	roomd [serve] [flags]     run a node
//	roomd token [flags]       mint a token for a user
//	roomd config check FILE   validate a configuration file
//	roomd bench [flags]       load nodes, measure loss, order and latency
//	roomd dev-cluster [-n 3]  run a local cluster of n nodes
//	roomd version             print the version
//
// One file per subcommand (serve.go, token.go, configcmd.go, bench.go,
// devcluster.go, version.go), and cluster.go for a clustered node's startup
// log. The configuration is internal/config: one table of settings
// read from, in rising precedence, defaults, a YAML file (--config,
// ROOMD_CONFIG), ROOMD_* variables and flags. docs/OPERATIONS.md describes
// every setting.
//
// This package only wires things together: it knows the server, room, auth
// and cluster packages' configuration and lifecycles, never their insides.
package main
