package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/config"
	"github.com/roomd/roomd/internal/testutil"
)

const (
	testClusterSecret = "cmd-test-cluster-secret-0123456789abcdef"
	// base64 of 32 bytes
	testClusterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
)

// config check loads the cluster's CA file too.
func TestConfigCheckLoadsClusterCA(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	testutil.WriteCert(t, certFile, keyFile)
	file := testutil.WriteFile(t, "tls.yaml", fmt.Sprintf("tls: {cert: %s, key: %s}\ncluster: {bind: '127.0.0.1:7946', secret: %s, tls_ca: %s}\n", certFile, keyFile, testClusterSecret, filepath.Join(dir, "none.pem")))
	if code, _, errOut := runCLI(t, "config", "check", file); code != 1 || !strings.Contains(errOut, "none.pem") {
		t.Errorf("config check with a missing CA file: exit %d, %q", code, errOut)
	}
}

func TestConfigCheckMasksClusterSecrets(t *testing.T) {
	file := testutil.WriteFile(t, "c.yaml", fmt.Sprintf("cluster: {bind: '0.0.0.0:7946', secret: %s, key: %q, join: [a:7946]}\n", testClusterSecret, testClusterKey))
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
	code, out, _ = runCLI(t, "config", "check", testutil.WriteFile(t, "d.yaml", "listen: ':8080'\n"))
	if code != 0 || strings.Contains(out, "secret: '***'") {
		t.Errorf("an unset secret printed as set:\n%s", out)
	}
}

// Two clustered nodes in this process: they find each other, and a
// graceful stop hands over, says bye, leaves, each step logged, with no
// secret in the logs.
func TestClusteredNodes(t *testing.T) {
	common := []config.FlagValue{
		{Name: "cluster-bind", Value: "127.0.0.1:0"}, {Name: "cluster-fast", Value: "true"}, {Name: "cluster-label", Value: "cmd-test"},
		{Name: "cluster-secret", Value: testClusterSecret}, {Name: "cluster-key", Value: testClusterKey},
	}
	a := startTestNode(t, append(common, config.FlagValue{Name: "node-name", Value: "node-a"})...)
	b := startTestNode(t, append(common, config.FlagValue{Name: "node-name", Value: "node-b"}, config.FlagValue{Name: "join", Value: a.GossipAddr()})...)
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
			if m := n.Members(); len(m) != 2 {
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
