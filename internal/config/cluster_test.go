package config

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/testutil"
)

const (
	testClusterSecret = "config-test-cluster-secret-0123456789abcdef"
	// base64 of 32 bytes
	testClusterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
)

func TestClusterSettings(t *testing.T) {
	// Off by default: a cluster of one.
	c := mustLoad(t, Sources{})
	if c.Clustered() || c.Cluster.Partitions != 256 || time.Duration(c.Cluster.RetryTimeout) != 10*time.Second {
		t.Errorf("defaults: clustered %v, partitions %d, retry %v", c.Clustered(), c.Cluster.Partitions, c.Cluster.RetryTimeout)
	}
	cc, err := c.ClusterConfig("n1", nil, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}, nil)
	if err != nil || cc.Gossip != nil || cc.Secret != nil || cc.Partitions != 256 {
		t.Errorf("a cluster of one: %+v, %v", cc, err)
	}

	// Seeds: repeated or comma-separated flags, a comma-separated variable,
	// a list or a comma-separated string in the file.
	base := []FlagValue{{"cluster-bind", "127.0.0.1:7946"}, {"cluster-secret", testClusterSecret}}
	c = mustLoad(t, Sources{Flags: append(base, FlagValue{"join", "a:1, b:2"}, FlagValue{"join", "c:3"})})
	if want := []string{"a:1", "b:2", "c:3"}; !reflect.DeepEqual(c.Cluster.Join, want) {
		t.Errorf("--join: %v, want %v", c.Cluster.Join, want)
	}
	c = mustLoad(t, Sources{Flags: base, Env: mapEnv(map[string]string{"ROOMD_JOIN": "x:1,y:2,"})})
	if want := []string{"x:1", "y:2"}; !reflect.DeepEqual(c.Cluster.Join, want) {
		t.Errorf("ROOMD_JOIN: %v, want %v", c.Cluster.Join, want)
	}
	for _, doc := range []string{"cluster: {join: 'p:1,q:2'}", "cluster: {join: [p:1, q:2]}"} {
		c = mustLoad(t, Sources{File: testutil.WriteFile(t, "c.yaml", doc), Flags: base})
		if want := []string{"p:1", "q:2"}; !reflect.DeepEqual(c.Cluster.Join, want) {
			t.Errorf("%s: %v, want %v", doc, c.Cluster.Join, want)
		}
	}

	// Everything reaches the cluster's configuration.
	c = mustLoad(t, Sources{Flags: append(base,
		FlagValue{"join", "roomd-peers.default.svc:7946"},
		FlagValue{"cluster-advertise", "10.0.0.5:7946"},
		FlagValue{"cluster-label", "prod"},
		FlagValue{"cluster-key", testClusterKey},
		FlagValue{"cluster-fast", "true"},
		FlagValue{"cluster-partitions", "512"},
		FlagValue{"cluster-retry-timeout", "3s"},
		FlagValue{"cluster-expect", "3"},
	)})
	cc, err = c.ClusterConfig("n1", nil, &net.TCPAddr{IP: net.IPv4zero, Port: 8080}, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := cc.Gossip
	if g == nil || g.BindAddr != "127.0.0.1:7946" || g.AdvertiseAddr != "10.0.0.5:7946" || g.Label != "prod" ||
		len(g.Key) != 32 || !g.Fast || !reflect.DeepEqual(g.Join, []string{"roomd-peers.default.svc:7946"}) {
		t.Errorf("gossip %+v", g)
	}
	if string(cc.Secret) != testClusterSecret || cc.Partitions != 512 || cc.RetryTimeout != 3*time.Second || cc.LinkTLS != nil || cc.Node != "n1" || cc.Expect != 3 {
		t.Errorf("cluster config %+v", cc)
	}
	// Listening on every interface: peers dial the listen port at the
	// listen host if it names one, else at the advertise host.
	if cc.HTTPAddr != "10.0.0.5:8080" {
		t.Errorf("HTTPAddr %q, want the advertise host and the listen port", cc.HTTPAddr)
	}
}

func TestPeerHTTPAddr(t *testing.T) {
	bound := &net.TCPAddr{IP: net.IPv4zero, Port: 8443}
	for _, tc := range []struct {
		listen, bind, advertise, advHTTP, want string
	}{
		{":8443", "0.0.0.0:7946", "10.0.0.5:7946", "", "10.0.0.5:8443"},
		{"192.168.1.4:8443", "0.0.0.0:7946", "10.0.0.5:7946", "", "192.168.1.4:8443"},
		{"0.0.0.0:8443", "10.0.0.6:7946", "", "", "10.0.0.6:8443"},
		{":8443", "0.0.0.0:7946", "node-1.example.internal:7946", "", "node-1.example.internal:8443"},
		{":8443", "0.0.0.0:7946", "10.0.0.5:7946", "rt-1.example.com:443", "rt-1.example.com:443"},
		{"[::]:8443", "[fd00::1]:7946", "", "", "[fd00::1]:8443"},
	} {
		c := &Config{Listen: tc.listen}
		c.Cluster.Bind, c.Cluster.Advertise, c.Cluster.AdvertiseHTTP = tc.bind, tc.advertise, tc.advHTTP
		got, err := c.PeerHTTPAddr(bound)
		if err != nil || got != tc.want {
			t.Errorf("%+v: %q, %v; want %q", tc, got, err, tc.want)
		}
	}
	// Nothing names an address: a private address of this machine, if it
	// has one; else an error that says what to set.
	c := &Config{Listen: ":8443"}
	c.Cluster.Bind = "0.0.0.0:7946"
	if got, err := c.PeerHTTPAddr(bound); err != nil {
		if !strings.Contains(err.Error(), "--cluster-advertise-http") {
			t.Errorf("error %v does not say what to set", err)
		}
	} else if h, p, _ := net.SplitHostPort(got); net.ParseIP(h) == nil || p != "8443" {
		t.Errorf("derived %q", got)
	}
}

func TestClusterValidation(t *testing.T) {
	dir := t.TempDir()
	bind := FlagValue{"cluster-bind", "0.0.0.0:7946"}
	secret := FlagValue{"cluster-secret", testClusterSecret}
	for _, tc := range []struct {
		flags []FlagValue
		want  string
	}{
		{[]FlagValue{{"join", "a:7946"}}, "cluster.join (--join): seeds are given but cluster.bind (--cluster-bind) is not"},
		{[]FlagValue{bind}, "cluster.secret (--cluster-secret): a clustered node (cluster.bind is set) needs the cluster's shared secret"},
		{[]FlagValue{{"cluster-bind", "7946"}, secret}, "cluster.bind (--cluster-bind): want host:port"},
		{[]FlagValue{{"cluster-bind", "gossip.local:7946"}, secret}, "cluster.bind (--cluster-bind): the host must be an IP address"},
		{[]FlagValue{bind, secret, {"cluster-advertise", "10.0.0.1"}}, "cluster.advertise (--cluster-advertise): want host:port"},
		{[]FlagValue{bind, secret, {"cluster-advertise-http", ":8080"}}, "cluster.advertise_http (--cluster-advertise-http): want host:port that other nodes can dial"},
		{[]FlagValue{{"cluster-key", "not base64!"}}, "cluster.key (--cluster-key): not base64"},
		{[]FlagValue{{"cluster-key", "c2hvcnQ="}}, "cluster.key (--cluster-key): decodes to 5 bytes, want 16, 24 or 32"},
		{[]FlagValue{{"cluster-partitions", "-1"}}, "cluster.partitions (--cluster-partitions): must not be negative"},
		{[]FlagValue{{"cluster-partitions", "100000"}}, "cluster.partitions (--cluster-partitions): at most 65536"},
		{[]FlagValue{{"cluster-retry-timeout", "-1s"}}, "cluster.retry_timeout (--cluster-retry-timeout): must not be negative"},
		{[]FlagValue{{"cluster-expect", "3"}}, "cluster.expect (--cluster-expect): is set but cluster.bind (--cluster-bind) is not"},
		{[]FlagValue{bind, secret, {"cluster-expect", "-1"}}, "cluster.expect (--cluster-expect): must not be negative"},
		{[]FlagValue{bind, secret, {"cluster-expect", "5000"}}, "cluster.expect (--cluster-expect): at most 1024 members"},
		{[]FlagValue{bind, secret, {"cluster-tls-ca", filepath.Join(dir, "ca.pem")}}, "apply to nodes that serve TLS"},
		{[]FlagValue{bind, secret, {"node-name", "two words"}}, "node_name (--node-name): a cluster member's name is at most 128 bytes, without spaces"},
	} {
		_, err := Load(Sources{Flags: tc.flags})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v:\n got %v\nwant …%s…", tc.flags, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), testClusterSecret) {
			t.Errorf("%v: the error shows the secret", tc.flags)
		}
	}
	// The key's error never quotes the key.
	_, err := Load(Sources{Flags: []FlagValue{{"cluster-key", "c2VjcmV0LWtleQ=="}}})
	if err == nil || strings.Contains(err.Error(), "c2VjcmV0") {
		t.Errorf("key error %v", err)
	}
}

func TestClusterLinkTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, caFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), filepath.Join(dir, "ca.pem")
	testutil.WriteCert(t, certFile, keyFile)
	ca, _ := os.ReadFile(certFile)
	testutil.WriteAtomic(t, caFile, ca)
	flags := []FlagValue{{"cluster-bind", "127.0.0.1:7946"}, {"cluster-secret", testClusterSecret}, {"tls-cert", certFile}, {"tls-key", keyFile}}
	c := mustLoad(t, Sources{Flags: flags})
	tc, err := c.LinkTLS()
	if err != nil || tc == nil || tc.InsecureSkipVerify || tc.RootCAs != nil {
		t.Errorf("TLS node: link TLS %+v, %v; want the system roots, verified", tc, err)
	}
	c = mustLoad(t, Sources{Flags: append(flags, FlagValue{"cluster-tls-ca", caFile}, FlagValue{"cluster-tls-insecure", "true"})})
	if tc, err = c.LinkTLS(); err != nil || tc.RootCAs == nil || !tc.InsecureSkipVerify {
		t.Errorf("with a CA file and insecure: %+v, %v", tc, err)
	}
	c.Cluster.TLSCA = keyFile
	if _, err = c.LinkTLS(); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("a CA file without certificates: %v", err)
	}
}

func TestDefaultNodeName(t *testing.T) {
	host, _ := os.Hostname()
	re := regexp.MustCompile("^" + regexp.QuoteMeta(strings.TrimSpace(host)) + "-[0-9a-f]{4}$")
	c := &Config{}
	names := map[string]bool{}
	for range 4 {
		n := c.ResolvedNodeName()
		if !re.MatchString(n) {
			t.Fatalf("default node name %q, want %s-XXXX", n, host)
		}
		names[n] = true
	}
	if len(names) < 2 {
		t.Errorf("four default names, all %v: the suffix is not random", names)
	}
	c.NodeName = "given"
	if c.ResolvedNodeName() != "given" {
		t.Error("a configured name is not kept")
	}
}
