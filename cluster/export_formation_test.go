package cluster

// FreeGossipAddr reserves a loopback address free for TCP and UDP until
// release (or the test's end), for a node whose address others must know
// before it starts.
var FreeGossipAddr = mlFreeAddr
