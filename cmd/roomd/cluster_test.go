package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	testClusterSecret = "cmd-test-cluster-secret-0123456789abcdef"
	// base64 of 32 bytes
	testClusterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
)

func TestClusterSettings(t *testing.T) {
	// Off by default: a cluster of one.
	c := mustLoad(t, sources{})
	if c.clustered() || c.Cluster.Partitions != 256 || time.Duration(c.Cluster.RetryTimeout) != 10*time.Second {
		t.Errorf("defaults: clustered %v, partitions %d, retry %v", c.clustered(), c.Cluster.Partitions, c.Cluster.RetryTimeout)
	}
	cc, err := c.clusterConfig("n1", nil, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}, nil)
	if err != nil || cc.Gossip != nil || cc.Secret != nil || cc.Partitions != 256 {
		t.Errorf("a cluster of one: %+v, %v", cc, err)
	}

	// Seeds: repeated or comma-separated flags, a comma-separated variable,
	// a list or a comma-separated string in the file.
	base := []flagValue{{"cluster-bind", "127.0.0.1:7946"}, {"cluster-secret", testClusterSecret}}
	c = mustLoad(t, sources{flags: append(base, flagValue{"join", "a:1, b:2"}, flagValue{"join", "c:3"})})
	if want := []string{"a:1", "b:2", "c:3"}; !reflect.DeepEqual(c.Cluster.Join, want) {
		t.Errorf("--join: %v, want %v", c.Cluster.Join, want)
	}
	c = mustLoad(t, sources{flags: base, env: mapEnv(map[string]string{"ROOMD_JOIN": "x:1,y:2,"})})
	if want := []string{"x:1", "y:2"}; !reflect.DeepEqual(c.Cluster.Join, want) {
		t.Errorf("ROOMD_JOIN: %v, want %v", c.Cluster.Join, want)
	}
	for _, doc := range []string{"cluster: {join: 'p:1,q:2'}", "cluster: {join: [p:1, q:2]}"} {
		c = mustLoad(t, sources{file: writeFile(t, "c.yaml", doc), flags: base})
		if want := []string{"p:1", "q:2"}; !reflect.DeepEqual(c.Cluster.Join, want) {
			t.Errorf("%s: %v, want %v", doc, c.Cluster.Join, want)
		}
	}

	// Everything reaches the cluster's configuration.
	c = mustLoad(t, sources{flags: append(base,
		flagValue{"join", "roomd-peers.default.svc:7946"},
		flagValue{"cluster-advertise", "10.0.0.5:7946"},
		flagValue{"cluster-label", "prod"},
		flagValue{"cluster-key", testClusterKey},
		flagValue{"cluster-fast", "true"},
		flagValue{"cluster-partitions", "512"},
		flagValue{"cluster-retry-timeout", "3s"},
		flagValue{"cluster-expect", "3"},
	)})
	cc, err = c.clusterConfig("n1", nil, &net.TCPAddr{IP: net.IPv4zero, Port: 8080}, nil)
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
		got, err := c.peerHTTPAddr(bound)
		if err != nil || got != tc.want {
			t.Errorf("%+v: %q, %v; want %q", tc, got, err, tc.want)
		}
	}
	// Nothing names an address: a private address of this machine, if it
	// has one; else an error that says what to set.
	c := &Config{Listen: ":8443"}
	c.Cluster.Bind = "0.0.0.0:7946"
	if got, err := c.peerHTTPAddr(bound); err != nil {
		if !strings.Contains(err.Error(), "--cluster-advertise-http") {
			t.Errorf("error %v does not say what to set", err)
		}
	} else if h, p, _ := net.SplitHostPort(got); net.ParseIP(h) == nil || p != "8443" {
		t.Errorf("derived %q", got)
	}
}

func TestClusterValidation(t *testing.T) {
	dir := t.TempDir()
	bind := flagValue{"cluster-bind", "0.0.0.0:7946"}
	secret := flagValue{"cluster-secret", testClusterSecret}
	for _, tc := range []struct {
		flags []flagValue
		want  string
	}{
		{[]flagValue{{"join", "a:7946"}}, "cluster.join (--join): seeds are given but cluster.bind (--cluster-bind) is not"},
		{[]flagValue{bind}, "cluster.secret (--cluster-secret): a clustered node (cluster.bind is set) needs the cluster's shared secret"},
		{[]flagValue{{"cluster-bind", "7946"}, secret}, "cluster.bind (--cluster-bind): want host:port"},
		{[]flagValue{{"cluster-bind", "gossip.local:7946"}, secret}, "cluster.bind (--cluster-bind): the host must be an IP address"},
		{[]flagValue{bind, secret, {"cluster-advertise", "10.0.0.1"}}, "cluster.advertise (--cluster-advertise): want host:port"},
		{[]flagValue{bind, secret, {"cluster-advertise-http", ":8080"}}, "cluster.advertise_http (--cluster-advertise-http): want host:port that other nodes can dial"},
		{[]flagValue{{"cluster-key", "not base64!"}}, "cluster.key (--cluster-key): not base64"},
		{[]flagValue{{"cluster-key", "c2hvcnQ="}}, "cluster.key (--cluster-key): decodes to 5 bytes, want 16, 24 or 32"},
		{[]flagValue{{"cluster-partitions", "-1"}}, "cluster.partitions (--cluster-partitions): must not be negative"},
		{[]flagValue{{"cluster-partitions", "100000"}}, "cluster.partitions (--cluster-partitions): at most 65536"},
		{[]flagValue{{"cluster-retry-timeout", "-1s"}}, "cluster.retry_timeout (--cluster-retry-timeout): must not be negative"},
		{[]flagValue{{"cluster-expect", "3"}}, "cluster.expect (--cluster-expect): is set but cluster.bind (--cluster-bind) is not"},
		{[]flagValue{bind, secret, {"cluster-expect", "-1"}}, "cluster.expect (--cluster-expect): must not be negative"},
		{[]flagValue{bind, secret, {"cluster-expect", "5000"}}, "cluster.expect (--cluster-expect): at most 1024 members"},
		{[]flagValue{bind, secret, {"cluster-tls-ca", filepath.Join(dir, "ca.pem")}}, "apply to nodes that serve TLS"},
		{[]flagValue{bind, secret, {"node-name", "two words"}}, "node_name (--node-name): a cluster member's name is at most 128 bytes, without spaces"},
	} {
		_, err := loadConfig(sources{flags: tc.flags})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v:\n got %v\nwant …%s…", tc.flags, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), testClusterSecret) {
			t.Errorf("%v: the error shows the secret", tc.flags)
		}
	}
	// The key's error never quotes the key.
	_, err := loadConfig(sources{flags: []flagValue{{"cluster-key", "c2VjcmV0LWtleQ=="}}})
	if err == nil || strings.Contains(err.Error(), "c2VjcmV0") {
		t.Errorf("key error %v", err)
	}
}

func TestClusterLinkTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, caFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), filepath.Join(dir, "ca.pem")
	writeCert(t, certFile, keyFile)
	ca, _ := os.ReadFile(certFile)
	writeAtomic(t, caFile, ca)
	flags := []flagValue{{"cluster-bind", "127.0.0.1:7946"}, {"cluster-secret", testClusterSecret}, {"tls-cert", certFile}, {"tls-key", keyFile}}
	c := mustLoad(t, sources{flags: flags})
	tc, err := c.linkTLS()
	if err != nil || tc == nil || tc.InsecureSkipVerify || tc.RootCAs != nil {
		t.Errorf("TLS node: link TLS %+v, %v; want the system roots, verified", tc, err)
	}
	c = mustLoad(t, sources{flags: append(flags, flagValue{"cluster-tls-ca", caFile}, flagValue{"cluster-tls-insecure", "true"})})
	if tc, err = c.linkTLS(); err != nil || tc.RootCAs == nil || !tc.InsecureSkipVerify {
		t.Errorf("with a CA file and insecure: %+v, %v", tc, err)
	}
	c.Cluster.TLSCA = keyFile
	if _, err = c.linkTLS(); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("a CA file without certificates: %v", err)
	}
	// config check loads the CA file too.
	file := writeFile(t, "tls.yaml", fmt.Sprintf("tls: {cert: %s, key: %s}\ncluster: {bind: '127.0.0.1:7946', secret: %s, tls_ca: %s}\n", certFile, keyFile, testClusterSecret, filepath.Join(dir, "none.pem")))
	if code, _, errOut := runCLI(t, "config", "check", file); code != 1 || !strings.Contains(errOut, "none.pem") {
		t.Errorf("config check with a missing CA file: exit %d, %q", code, errOut)
	}
}

func TestDefaultNodeName(t *testing.T) {
	host, _ := os.Hostname()
	re := regexp.MustCompile("^" + regexp.QuoteMeta(strings.TrimSpace(host)) + "-[0-9a-f]{4}$")
	c := &Config{}
	names := map[string]bool{}
	for range 4 {
		n := c.nodeName()
		if !re.MatchString(n) {
			t.Fatalf("default node name %q, want %s-XXXX", n, host)
		}
		names[n] = true
	}
	if len(names) < 2 {
		t.Errorf("four default names, all %v: the suffix is not random", names)
	}
	c.NodeName = "given"
	if c.nodeName() != "given" {
		t.Error("a configured name is not kept")
	}
}

func TestConfigCheckMasksClusterSecrets(t *testing.T) {
	file := writeFile(t, "c.yaml", fmt.Sprintf("cluster: {bind: '0.0.0.0:7946', secret: %s, key: %q, join: [a:7946]}\n", testClusterSecret, testClusterKey))
	code, out, errOut := runCLI(t, "config", "check", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, testClusterSecret) || strings.Contains(out, testClusterKey) {
		t.Errorf("config check shows a cluster secret:\n%s", out)
	}
	if !strings.Contains(out, "secret: '***'") || !strings.Contains(out, "key: '***'") || !strings.Contains(out, "partitions: 256") {
		t.Errorf("cluster section not masked or not filled:\n%s", out)
	}
	// Unset secrets stay empty rather than read as set.
	code, out, _ = runCLI(t, "config", "check", writeFile(t, "d.yaml", "listen: ':8080'\n"))
	if code != 0 || strings.Contains(out, "secret: '***'") {
		t.Errorf("an unset secret printed as set:\n%s", out)
	}
}

// Two clustered nodes in this process: they find each other, and a
// graceful stop hands over, says bye, leaves, each step logged, with no
// secret in the logs.
func TestClusteredNodes(t *testing.T) {
	common := []flagValue{
		{"cluster-bind", "127.0.0.1:0"}, {"cluster-fast", "true"}, {"cluster-label", "cmd-test"},
		{"cluster-secret", testClusterSecret}, {"cluster-key", testClusterKey},
	}
	a := startTestNode(t, append(common, flagValue{"node-name", "node-a"})...)
	b := startTestNode(t, append(common, flagValue{"node-name", "node-b"}, flagValue{"join", a.cl.GossipAddr()})...)
	view := func(n *testNode) (map[string]string, error) {
		resp, err := http.Get("http://" + n.addr() + "/v1/cluster")
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var v struct {
			Members []struct{ Name, State, Addr string }
		}
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			return nil, err
		}
		out := map[string]string{}
		for _, m := range v.Members {
			out[m.Name] = m.State + " " + m.Addr
		}
		return out, nil
	}
	defer http.DefaultClient.CloseIdleConnections()
	checkFor(t, 10*time.Second, func() error {
		for _, n := range []*testNode{a, b} {
			v, err := view(n)
			if err != nil {
				return err
			}
			if v["node-a"] != "alive "+a.addr() || v["node-b"] != "alive "+b.addr() {
				return fmt.Errorf("%v", v)
			}
			// Placement follows once the peer link proved the secret.
			if m := n.cl.Placement().Members(); len(m) != 2 {
				return fmt.Errorf("placement members %v", m)
			}
		}
		return nil
	})
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, func() error {
		v, err := view(a)
		if err != nil {
			return err
		}
		if s := v["node-b"]; s != "" && !strings.HasPrefix(s, "dead") {
			return errors.New("node-b is " + s)
		}
		return nil
	})
	logs := b.logs.String()
	last := -1
	for _, msg := range []string{`"msg":"cluster member"`, `"msg":"draining`, `"msg":"rooms handed over"`, `"msg":"shutting down"`, `"msg":"leaving the cluster"`, `"msg":"stopped"`} {
		i := strings.Index(logs, msg)
		if i < 0 || i < last {
			t.Errorf("node-b's log lacks %s, or has it out of order:\n%s", msg, logs)
		}
		last = i
	}
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	if logs := a.logs.String(); !strings.Contains(logs, "draining skipped: no other member serves") {
		t.Errorf("the last node did not skip the drain:\n%s", logs)
	}
	for _, n := range []*testNode{a, b} {
		if logs := n.logs.String(); strings.Contains(logs, testClusterSecret) || strings.Contains(logs, testClusterKey) {
			t.Errorf("a log holds a cluster secret:\n%s", logs)
		}
	}
}
