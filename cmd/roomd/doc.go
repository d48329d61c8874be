// Command roomd runs a roomd node, and carries the tools around it.
//
//	roomd [flags]          run a node (see roomd -h)
//
// Every flag has a ROOMD_* environment equivalent (--ping-interval is
// ROOMD_PING_INTERVAL); a flag given on the command line wins.
package main
