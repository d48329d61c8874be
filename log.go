package roomd

import (
	"log/slog"

	"github.com/roomd/roomd/cluster"
)

// Log keys of this package, one spelling each. Secrets and tokens are
// never logged: not their values, not their lengths.
const (
	logKeyErr        = "err"
	logKeyGrace      = "grace"
	logKeyDelay      = "delay"
	logKeyTook       = "took"
	logKeyIndex      = "index"
	logKeyAlgs       = "algorithms"
	logKeyNode       = "node"
	logKeyTLS        = "tls"
	logKeyGossip     = "gossip"
	logKeyAdvertise  = "advertise"
	logKeyPeerHTTP   = "peer_http"
	logKeySeeds      = "seeds"
	logKeyLabel      = "label"
	logKeyFast       = "fast"
	logKeyEncrypted  = "encrypted"
	logKeyPartitions = "partitions"
	logKeyReplicas   = "replicas"
	logKeyExpect     = "expect"
)

// logStart says how the node checks tokens: dev mode loudly, never a
// secret.
func (n *Node) logStart() {
	if n.verifier.Dev() {
		n.log.Warn("DEV MODE: no token key is configured, so every client is anonymous with every permission; do not expose this node")
		return
	}
	n.log.Info("tokens verified", slog.Any(logKeyAlgs, n.verifier.Algorithms()))
	for i, s := range n.cfg.Auth.JWTSecrets {
		if len(s) < 32 {
			n.log.Warn("a JWT secret is shorter than 32 bytes; use at least 32 random bytes", slog.Int(logKeyIndex, i+1))
		}
	}
	if len(n.cfg.APIKeys) == 0 {
		n.log.Info("the HTTP API is closed: no API key is configured")
	}
}

// logCluster says how the node takes part in its cluster, never a secret.
func (n *Node) logCluster(cc cluster.Config) {
	cfg := n.cfg
	if !cfg.Clustered() {
		return
	}
	seeds := cfg.Cluster.Join
	if seeds == nil {
		seeds = []string{}
	}
	n.log.Info("cluster member",
		slog.String(logKeyNode, cc.Node),
		slog.String(logKeyGossip, n.cl.GossipAddr()),
		slog.String(logKeyAdvertise, cfg.Cluster.Advertise),
		slog.String(logKeyPeerHTTP, cc.HTTPAddr),
		slog.Any(logKeySeeds, seeds),
		slog.Int(logKeyExpect, cfg.Cluster.Expect),
		slog.String(logKeyLabel, cfg.Cluster.Label),
		slog.Bool(logKeyEncrypted, true), // with cluster.key, else a key derived from the secret
		slog.Bool(logKeyTLS, cc.LinkTLS != nil),
		slog.Bool(logKeyFast, cfg.Cluster.Fast),
		slog.Int(logKeyPartitions, cc.Partitions),
		slog.Int(logKeyReplicas, cc.Replicas))
	if len(cfg.Cluster.Secret) < 32 {
		n.log.Warn("the cluster secret is shorter than 32 bytes; use at least 32 random bytes")
	}
	if len(cc.Gossip.Key) == 0 {
		n.log.Info("gossip is encrypted and authenticated with a key derived from the cluster secret")
	}
	if cc.LinkTLS != nil && cc.LinkTLS.InsecureSkipVerify {
		n.log.Warn("peer links do not verify the other nodes' certificates (cluster.tls_insecure)")
	}
}
