package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-sockaddr"

	"github.com/roomd/roomd/cluster"
	"github.com/roomd/roomd/cluster/membership"
	"github.com/roomd/roomd/room"
)

// The cluster keys: their validation, and the cluster layer's configuration
// they make.

// Clustered reports whether this node is a member of a cluster (rather
// than a cluster of one).
func (c *Config) Clustered() bool { return c.Cluster.Bind != "" }

// validateCluster checks the cluster keys.
func (c *Config) validateCluster() error {
	cl := &c.Cluster
	if _, err := c.clusterKey(); err != nil {
		return err
	}
	if cl.Partitions > 1<<16 {
		return keyError("cluster.partitions", "at most 65536, got %d", cl.Partitions)
	}
	if cl.Replicas > 7 {
		return keyError("cluster.replicas", "at most 7, got %d", cl.Replicas)
	}
	if cl.Expect > 1024 {
		return keyError("cluster.expect", "at most 1024 members, got %d", cl.Expect)
	}
	if !c.Clustered() {
		if len(cl.Join) > 0 {
			return keyError("cluster.join", "seeds are given but cluster.bind (--cluster-bind) is not: set the gossip address to join a cluster")
		}
		if cl.Expect > 0 {
			return keyError("cluster.expect", "is set but cluster.bind (--cluster-bind) is not: set the gossip address to form a cluster")
		}
		return nil
	}
	host, _, err := net.SplitHostPort(cl.Bind)
	if err != nil {
		return keyError("cluster.bind", "want host:port (\"0.0.0.0:7946\", \"10.0.0.5:7946\"), got %q", cl.Bind)
	}
	if host != "" && net.ParseIP(host) == nil {
		return keyError("cluster.bind", "the host must be an IP address (0.0.0.0 for every interface), got %q", host)
	}
	if cl.Advertise != "" {
		if _, _, err := net.SplitHostPort(cl.Advertise); err != nil {
			return keyError("cluster.advertise", "want host:port, got %q", cl.Advertise)
		}
	}
	if cl.AdvertiseHTTP != "" {
		if h, p, err := net.SplitHostPort(cl.AdvertiseHTTP); err != nil || h == "" || p == "0" {
			return keyError("cluster.advertise_http", "want host:port that other nodes can dial, got %q", cl.AdvertiseHTTP)
		}
	}
	for i, seed := range cl.Join {
		if strings.TrimSpace(seed) == "" {
			return keyError("cluster.join", "entry %d is empty", i+1)
		}
	}
	if strings.TrimSpace(cl.Secret) == "" {
		return keyError("cluster.secret", "a clustered node (cluster.bind is set) needs the cluster's shared secret")
	}
	if c.TLS.Cert == "" && (cl.TLSCA != "" || cl.TLSInsecure) {
		return errors.New("cluster.tls_ca (--cluster-tls-ca) and cluster.tls_insecure (--cluster-tls-insecure) apply to nodes that serve TLS (tls.cert)")
	}
	if name := c.NodeName; name != "" {
		if len(name) > 128 || strings.IndexFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
			return keyError("node_name", "a cluster member's name is at most 128 bytes, without spaces or control characters, got %q", name)
		}
	}
	return nil
}

// clusterKey decodes cluster.key: nil when not set.
func (c *Config) clusterKey() ([]byte, error) {
	k := strings.TrimSpace(c.Cluster.Key)
	if k == "" {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(k)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(k)
	}
	// The error never quotes the key.
	if err != nil {
		return nil, keyError("cluster.key", "not base64 (make one with: openssl rand -base64 32)")
	}
	switch len(b) {
	case 16, 24, 32:
		return b, nil
	}
	return nil, keyError("cluster.key", "decodes to %d bytes, want 16, 24 or 32 (make one with: openssl rand -base64 32)", len(b))
}

// LinkTLS is the client configuration of peer links: nil unless this node
// serves TLS, in which case every node does and links dial wss://.
func (c *Config) LinkTLS() (*tls.Config, error) {
	if !c.Clustered() || c.TLS.Cert == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.Cluster.TLSInsecure}
	if f := c.Cluster.TLSCA; f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("cluster.tls_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cluster.tls_ca: %s holds no PEM certificate", f)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// PeerHTTPAddr is the host:port other nodes dial for peer links:
// cluster.advertise_http, else the bound port at the listen host when that
// names an interface, else at the gossip advertise host, the gossip bind
// host, or a private address of this machine.
func (c *Config) PeerHTTPAddr(bound net.Addr) (string, error) {
	if c.Cluster.AdvertiseHTTP != "" {
		return c.Cluster.AdvertiseHTTP, nil
	}
	_, port, err := net.SplitHostPort(bound.String())
	if err != nil {
		return "", err
	}
	reachable := func(host string) bool {
		ip := net.ParseIP(host)
		return host != "" && (ip == nil || !ip.IsUnspecified())
	}
	host, _, _ := net.SplitHostPort(c.Listen)
	if !reachable(host) && c.Cluster.Advertise != "" {
		host, _, _ = net.SplitHostPort(c.Cluster.Advertise)
	}
	if !reachable(host) {
		host, _, _ = net.SplitHostPort(c.Cluster.Bind)
	}
	if !reachable(host) {
		ip, err := sockaddr.GetPrivateIP()
		if err != nil || ip == "" {
			return "", fmt.Errorf("cluster: cannot tell which address other nodes reach this node's HTTP port on (%v): set cluster.advertise_http (--cluster-advertise-http) or cluster.advertise", err)
		}
		host = ip
	}
	return net.JoinHostPort(host, port), nil
}

// ClusterConfig is the cluster layer's configuration of this node, whose
// HTTP listener is bound at bound. A node that is not clustered is a
// cluster of one.
func (c *Config) ClusterConfig(name string, rooms *room.Manager, bound net.Addr, logger *slog.Logger) (cluster.Config, error) {
	cc := cluster.Config{
		Rooms:        rooms,
		Node:         name,
		Partitions:   c.Cluster.Partitions,
		Replicas:     c.Cluster.Replicas,
		RetryTimeout: time.Duration(c.Cluster.RetryTimeout),
		Logger:       logger,
	}
	if !c.Clustered() {
		return cc, nil
	}
	key, err := c.clusterKey()
	if err != nil {
		return cc, err
	}
	if cc.LinkTLS, err = c.LinkTLS(); err != nil {
		return cc, err
	}
	if cc.HTTPAddr, err = c.PeerHTTPAddr(bound); err != nil {
		return cc, err
	}
	cc.Secret = []byte(c.Cluster.Secret)
	cc.LinkMaxMessage = int(c.Cluster.LinkMaxMessage)
	if c.Cluster.Fast {
		cc.Timing = cluster.FastTiming
	}
	cc.Expect = c.Cluster.Expect
	cc.Gossip = &membership.Config{
		BindAddr:      c.Cluster.Bind,
		AdvertiseAddr: c.Cluster.Advertise,
		Join:          c.Cluster.Join,
		Label:         c.Cluster.Label,
		Key:           key,
		Fast:          c.Cluster.Fast,
		Logger:        logger,
	}
	return cc, nil
}
