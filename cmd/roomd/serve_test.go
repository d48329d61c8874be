package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/roomd/roomd/internal/config"
	"github.com/roomd/roomd/internal/testutil"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/server/auth"
)

// syncBuffer is a log sink safe for concurrent writers (internal/testutil).
type syncBuffer = testutil.SyncBuffer

// writeECKey writes the public half of a fresh P-256 key to path and
// returns the private key, to sign ES256 tokens.
func writeECKey(t *testing.T, path string) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WriteAtomic(t, path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	return key
}

func es256Token(t *testing.T, key *ecdsa.PrivateKey, sub string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"sub": sub, "exp": time.Now().Add(time.Hour).Unix(), "rooms": map[string][]string{"*": {"join"}},
	}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// testNode runs a node in-process until the test ends.
type testNode struct {
	*node
	logs *syncBuffer
	hup  chan os.Signal
	stop func() error // cancels and waits for run's result
}

func startTestNode(t *testing.T, flags ...config.FlagValue) *testNode {
	t.Helper()
	flags = append([]config.FlagValue{{Name: "addr", Value: "127.0.0.1:0"}, {Name: "shutdown-grace", Value: "5s"}, {Name: "drain-delay", Value: "-1s"}}, flags...)
	cfg := mustLoad(t, config.Sources{Flags: flags})
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n, err := startNode(cfg, logger)
	if err != nil {
		t.Fatalf("startNode: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() { done <- n.run(ctx, hup) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(10 * time.Second):
				runErr = errors.New("run did not return")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return &testNode{node: n, logs: logs, hup: hup, stop: stop}
}

// dialWSS opens a WebSocket over TLS, trusting roots, and says hello.
func dialWSS(t *testing.T, addr string, roots *x509.CertPool, tok string) (*websocket.Conn, *protocol.Frame, error) {
	t.Helper()
	d := websocket.Dialer{
		TLSClientConfig:  &tls.Config{RootCAs: roots},
		Subprotocols:     []string{protocol.Subprotocol},
		HandshakeTimeout: 5 * time.Second,
	}
	ws, resp, err := d.Dial("wss://"+addr+"/v1/ws", nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, nil, err
	}
	hello := map[string]any{"t": protocol.TypeHello, "v": 1}
	if tok != "" {
		hello["tok"] = tok
	}
	b, _ := msgpack.Marshal(hello)
	if err := ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
		ws.Close()
		return nil, nil, err
	}
	f, err := readFrame(ws, protocol.TypePing)
	if err != nil {
		ws.Close()
		return nil, nil, err
	}
	return ws, f, nil
}

// readFrame reads the next frame that is not of a skipped type. A message
// carrying several frames yields its first one of interest.
func readFrame(ws *websocket.Conn, skip ...string) (*protocol.Frame, error) {
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return nil, err
		}
		frames, err := protocol.Split(nil, msg, 0)
		if err != nil {
			return nil, err
		}
		for _, fb := range frames {
			var f protocol.Frame
			if err := protocol.DecodeFrame(fb, &f); err != nil {
				return nil, err
			}
			if !contains(skip, f.T) {
				return &f, nil
			}
		}
	}
}

func contains(l []string, v string) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// servedSerial makes a new TLS connection and returns the serial number of
// the certificate the node presents.
func servedSerial(addr string) (*big.Int, error) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

func TestServeTLSAndReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pubFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "issuer.pem")
	cert1 := testutil.WriteCert(t, certFile, keyFile)
	keyA := writeECKey(t, pubFile)
	n := startTestNode(t,
		config.FlagValue{Name: "tls-cert", Value: certFile}, config.FlagValue{Name: "tls-key", Value: keyFile},
		config.FlagValue{Name: "jwt-public-key", Value: pubFile})
	addr := n.addr()
	roots := x509.NewCertPool()
	roots.AddCert(cert1)

	// HTTPS, HTTP/1.1 and HTTP/2.
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: h2}
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + addr + "/healthz")
		if err != nil {
			t.Fatalf("https (h2 %v): %v", h2, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if resp.StatusCode != 200 || string(body) != "ok\n" {
			t.Fatalf("https /healthz: %d %q", resp.StatusCode, body)
		}
		if wantProto := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[h2]; resp.Proto != wantProto {
			t.Errorf("proto %s, want %s", resp.Proto, wantProto)
		}
		if got := resp.TLS.PeerCertificates[0].SerialNumber; got.Cmp(cert1.SerialNumber) != 0 {
			t.Fatalf("served serial %v, want %v", got, cert1.SerialNumber)
		}
	}
	// TLS 1.2 at least.
	if c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11}); err == nil {
		c.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}
	// Plain HTTP on the TLS port gets nothing useful.
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP served on the TLS listener")
		}
	}

	// WSS with a token under the key of the public key file.
	ws, welcome, err := dialWSS(t, addr, roots, es256Token(t, keyA, "alice"))
	if err != nil {
		t.Fatalf("wss: %v", err)
	}
	defer ws.Close()
	if welcome.T != protocol.TypeWelcome || welcome.U != "alice" {
		t.Fatalf("welcome %+v", welcome)
	}
	// A key not in the file is refused.
	keyB, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if ws2, f, err := dialWSS(t, addr, roots, es256Token(t, keyB, "bob")); err == nil {
		ws2.Close()
		if f.T == protocol.TypeWelcome {
			t.Fatal("token under an unknown key accepted")
		}
	}

	// Rotate the certificate and the token key, then SIGHUP the process:
	// signal.Notify routes it to the node's channel, as runServe does.
	cert2 := testutil.WriteCert(t, certFile, keyFile)
	keyB = writeECKey(t, pubFile)
	signal.Notify(n.hup, syscall.SIGHUP)
	defer signal.Stop(n.hup)
	sendSignal(t, os.Getpid(), syscall.SIGHUP)
	checkFor(t, 5*time.Second, func() error {
		got, err := servedSerial(addr)
		if err != nil {
			return err
		}
		if got.Cmp(cert2.SerialNumber) != 0 {
			return fmt.Errorf("still serving serial %v", got)
		}
		return nil
	})
	roots2 := x509.NewCertPool()
	roots2.AddCert(cert2)
	ws3, welcome, err := dialWSS(t, addr, roots2, es256Token(t, keyB, "bob"))
	if err != nil || welcome.T != protocol.TypeWelcome || welcome.U != "bob" {
		t.Fatalf("after reload, new key: %v %+v", err, welcome)
	}
	defer ws3.Close()
	if ws4, f, err := dialWSS(t, addr, roots2, es256Token(t, keyA, "alice")); err == nil {
		ws4.Close()
		if f.T == protocol.TypeWelcome {
			t.Fatal("token under the removed key still accepted")
		}
	}
	if !strings.Contains(n.logs.String(), `"msg":"TLS certificate reloaded"`) || !strings.Contains(n.logs.String(), `"msg":"token keys reloaded"`) {
		t.Errorf("reload not logged:\n%s", n.logs)
	}

	// A failed reload keeps the certificate and keys in force.
	testutil.WriteAtomic(t, certFile, []byte("not a certificate"))
	testutil.WriteAtomic(t, pubFile, []byte("not a key"))
	if err := n.reload(); err == nil {
		t.Fatal("reload of garbage succeeded")
	}
	if got, err := servedSerial(addr); err != nil || got.Cmp(cert2.SerialNumber) != 0 {
		t.Fatalf("after a failed reload: serial %v (%v), want %v", got, err, cert2.SerialNumber)
	}
	if ws5, f, err := dialWSS(t, addr, roots2, es256Token(t, keyB, "bob")); err != nil || f.T != protocol.TypeWelcome {
		t.Fatalf("after a failed reload, the keys in force: %v %+v", err, f)
	} else {
		ws5.Close()
	}
	if !strings.Contains(n.logs.String(), "TLS certificate reload failed; the old certificate stays in force") {
		t.Errorf("failed reload not logged:\n%s", n.logs)
	}

	// The connection opened before the reloads is still up; shutdown says
	// bye with code shutdown (1).
	go func() { _ = n.stop() }()
	f, err := readFrame(ws, protocol.TypePing)
	if err != nil || f.T != protocol.TypeBye || f.Code != protocol.CodeShutdown {
		t.Fatalf("at shutdown: %+v, %v; want bye %d", f, err, protocol.CodeShutdown)
	}
	if err := n.stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// Neither a secret, an API key nor a token ever reaches the log, whatever
// happens: start, good and bad tokens, reloads, shutdown.
func TestLogsHoldNoSecrets(t *testing.T) {
	const (
		secret1 = "log-test-secret-one-0123456789abcdef"
		secret2 = "log-test-secret-two-0123456789abcdef"
		apiKey  = "log-test-api-key-0123456789"
		short   = "shortsecret"
	)
	n := startTestNode(t,
		config.FlagValue{Name: "jwt-secret", Value: secret1}, config.FlagValue{Name: "jwt-secret", Value: secret2}, config.FlagValue{Name: "jwt-secret", Value: short},
		config.FlagValue{Name: "api-key", Value: apiKey}, config.FlagValue{Name: "log-level", Value: "debug"})
	good, err := auth.Mint([]byte(secret1), "alice", []auth.Grant{{Pattern: "*", Perms: auth.PermAll}}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := auth.Mint([]byte("some-other-secret-0123456789abcdef"), "mallory", nil, nil, time.Hour)
	other, _ := auth.Mint([]byte(secret2), "eve", []auth.Grant{{Pattern: "chat:*", Perms: auth.PermJoin}}, map[string]string{"name": "Eve"}, time.Minute)

	var tokens []string
	for _, tok := range []string{good, bad, other, "not.a.token", "garbage-token-value"} {
		tokens = append(tokens, tok)
		d := websocket.Dialer{Subprotocols: []string{protocol.Subprotocol}}
		ws, resp, err := d.Dial("ws://"+n.addr()+"/v1/ws?token="+tok, http.Header{"Authorization": {"Bearer " + tok}})
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		if err != nil {
			continue
		}
		b, _ := msgpack.Marshal(map[string]any{"t": "hello", "v": 1, "tok": tok})
		_ = ws.WriteMessage(websocket.BinaryMessage, b)
		_, _ = readFrame(ws, protocol.TypePing)
		ws.Close()
	}
	// The HTTP API, with a good and a bad key.
	for _, key := range []string{apiKey, "wrong-" + apiKey} {
		req, _ := http.NewRequest("GET", "http://"+n.addr()+"/v1/rooms/chat:x", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	_ = n.reload()
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections()

	logs := n.logs.String()
	if testing.Verbose() {
		t.Logf("logs:\n%s", logs)
	}
	if !strings.Contains(logs, `"msg":"listening"`) || !strings.Contains(logs, `"msg":"stopped"`) {
		t.Fatalf("logs are incomplete:\n%s", logs)
	}
	for _, s := range append([]string{secret1, secret2, short, apiKey}, tokens...) {
		if strings.Contains(logs, s) {
			t.Errorf("log holds %q:\n%s", s, logs)
		}
	}
	// Each token's signature alone must not appear either.
	for _, tok := range tokens {
		if i := strings.LastIndexByte(tok, '.'); i >= 0 && len(tok)-i > 8 && strings.Contains(logs, tok[i+1:]) {
			t.Errorf("log holds a token signature")
		}
	}
	if strings.Contains(logs, "DEV MODE") {
		t.Error("dev-mode warning logged with keys configured")
	}
	if !strings.Contains(logs, "shorter than 32 bytes") {
		t.Error("no warning about the short secret")
	}
}

func TestDevModeWarns(t *testing.T) {
	n := startTestNode(t)
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	logs := n.logs.String()
	if !strings.Contains(logs, `"level":"WARN","msg":"DEV MODE`) {
		t.Errorf("no dev-mode warning:\n%s", logs)
	}
}

// listeningAddr is the address of the first `listening` record in JSON
// logs, or "".
func listeningAddr(logs string) string {
	for _, line := range strings.Split(logs, "\n") {
		var rec struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
			return rec.Addr
		}
	}
	return ""
}

// The whole command: roomd serve with a config file, SIGHUP, then SIGTERM.
func TestServeCommandSignals(t *testing.T) {
	prev := slog.Default()
	t.Cleanup(func() {
		slog.SetDefault(prev)
		log.SetOutput(os.Stderr)
		log.SetFlags(log.LstdFlags)
	})
	file := testutil.WriteFile(t, "roomd.yaml", "listen: 127.0.0.1:0\nlog: {format: json}\nnode_name: from-file\n")
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- cli([]string{"serve", "--config", file, "--node-name", "cli-node"}, io.Discard, stderr)
	}()

	var addr string
	checkFor(t, 10*time.Second, func() error {
		if addr = listeningAddr(stderr.String()); addr != "" {
			return nil
		}
		select {
		case code := <-done:
			t.Fatalf("roomd exited %d:\n%s", code, stderr)
		default:
		}
		return errors.New("not listening yet")
	})
	resp, err := http.Get("http://" + addr + "/v1/info")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Node string
		Dev  bool
	}
	_ = json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if info.Node != "cli-node" || !info.Dev {
		t.Errorf("/v1/info %+v: want node cli-node (flag over file), dev", info)
	}

	sendSignal(t, os.Getpid(), syscall.SIGHUP)
	checkFor(t, 5*time.Second, func() error {
		if !strings.Contains(stderr.String(), "nothing to reload") {
			return errors.New("SIGHUP not handled")
		}
		return nil
	})
	sendSignal(t, os.Getpid(), syscall.SIGTERM)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after SIGTERM:\n%s", code, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("roomd did not stop on SIGTERM")
	}
	if !strings.Contains(stderr.String(), `"msg":"stopped"`) {
		t.Errorf("no stopped record:\n%s", stderr)
	}
}

func TestMetricsAndWebSwitches(t *testing.T) {
	get := func(addr, path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	defer http.DefaultClient.CloseIdleConnections()

	n := startTestNode(t)
	if code, body := get(n.addr(), "/metrics"); code != 200 || !strings.Contains(body, "roomd_connections") {
		t.Errorf("/metrics: %d, %.200q", code, body)
	}
	if code, _ := get(n.addr(), "/"); code != 200 {
		t.Errorf("/: %d", code)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _ := get(n.addr(), path); code != 200 {
			t.Errorf("%s: %d", path, code)
		}
	}

	off := startTestNode(t, config.FlagValue{Name: "metrics", Value: "false"}, config.FlagValue{Name: "web", Value: "false"})
	if code, _ := get(off.addr(), "/metrics"); code != 404 {
		t.Errorf("--metrics=false: /metrics %d", code)
	}
	if code, _ := get(off.addr(), "/"); code != 404 {
		t.Errorf("--web=false: / %d", code)
	}
}

// A node that cannot start says why and leaves nothing running.
func TestStartFailures(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	for _, tc := range []struct {
		flags []config.FlagValue
		want  string
	}{
		{[]config.FlagValue{{Name: "addr", Value: busy.Addr().String()}}, "address already in use"},
		{[]config.FlagValue{{Name: "addr", Value: "127.0.0.1:0"}, {Name: "tls-cert", Value: filepath.Join(dir, "c.pem")}, {Name: "tls-key", Value: filepath.Join(dir, "k.pem")}}, "c.pem"},
		{[]config.FlagValue{{Name: "addr", Value: "127.0.0.1:0"}, {Name: "jwt-public-key", Value: filepath.Join(dir, "none.pem")}}, "none.pem"},
		{[]config.FlagValue{{Name: "addr", Value: "127.0.0.1:0"}, {Name: "cluster-bind", Value: busy.Addr().String()}, {Name: "cluster-secret", Value: testClusterSecret}}, "address already in use"},
	} {
		cfg := mustLoad(t, config.Sources{Flags: tc.flags})
		logs := &syncBuffer{}
		n, err := startNode(cfg, slog.New(slog.NewTextHandler(logs, nil)))
		if err == nil {
			n.ln.Close()
			t.Errorf("%v: started", tc.flags)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want …%s…", tc.flags, err, tc.want)
		}
		if strings.Contains(logs.String(), "listening") {
			t.Errorf("%v: logged listening", tc.flags)
		}
	}
}
