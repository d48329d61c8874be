package cluster

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/roomd/roomd/cluster/membership"
	"github.com/roomd/roomd/internal/testutil"
	"github.com/roomd/roomd/room"
)

// linkNode is a clustered node without a client server: real gossip on
// loopback and /v1/peer on a real HTTP listener.
type linkNode struct {
	cl      *Cluster
	addr    string
	metrics *oversizeMetrics
}

type oversizeMetrics struct {
	noMetrics
	oversized atomic.Int64
}

func (m *oversizeMetrics) LinkOversized() { m.oversized.Add(1) }

func startLinkNode(t *testing.T, name, secret string, maxMsg int, seeds ...string) *linkNode {
	t.Helper()
	return startLinkNodeFaults(t, name, secret, maxMsg, nil, seeds...)
}

// startLinkNodeFaults is startLinkNode with faults injected from the start.
func startLinkNodeFaults(t *testing.T, name, secret string, maxMsg int, faults *membership.Faults, seeds ...string) *linkNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rooms, err := room.New(room.Config{})
	if err != nil {
		t.Fatal(err)
	}
	m := &oversizeMetrics{}
	cl, err := New(Config{
		Rooms: rooms, Node: name, HTTPAddr: ln.Addr().String(), Secret: []byte(secret),
		Gossip:         &membership.Config{BindAddr: "127.0.0.1:0", Join: seeds, Fast: true},
		LinkMaxMessage: maxMsg, Metrics: m, Faults: faults,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/peer", cl.PeerHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = cl.Shutdown(ctx)
		_ = srv.Close()
		<-done
		rooms.Close()
	})
	return &linkNode{cl: cl, addr: ln.Addr().String(), metrics: m}
}

// recorder is a reverse proxy to a node's HTTP listener that keeps every
// request it forwards, as it came on the wire.
type recorder struct {
	addr string
	mu   sync.Mutex
	reqs [][]byte
	hdrs []http.Header
}

func startRecorder(t *testing.T, target string) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{addr: ln.Addr().String()}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dump, _ := httputil.DumpRequest(r, true)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, dump)
		rec.hdrs = append(rec.hdrs, r.Header.Clone())
		rec.mu.Unlock()
		proxy.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return rec
}

// A peer link proves the secret without sending it, and a captured
// handshake replayed is refused.
func TestPeerLinkHandshakeKeepsSecretAndRefusesReplay(t *testing.T) {
	const secret = "peer-link-test-secret-0123456789abcdef"
	a := startLinkNode(t, "node-a", secret, 0)
	b := startLinkNode(t, "node-b", secret, 0)
	rec := startRecorder(t, b.addr)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := a.cl.dial(ctx, "node-b", rec.addr)
	if err != nil {
		t.Fatalf("dial through the recorder: %v", err)
	}
	_ = ws.Close()
	// Both ends know the other proved the secret.
	if !a.cl.isVerified("node-b", b.cl.incarnation) {
		t.Error("the dialer did not verify the server")
	}
	testutil.CheckFor(t, 5*time.Second, func() error {
		if !b.cl.isVerified("node-a", a.cl.incarnation) {
			return errors.New("the server did not verify the dialer")
		}
		return nil
	})

	rec.mu.Lock()
	reqs, hdrs := rec.reqs, rec.hdrs
	rec.mu.Unlock()
	if len(reqs) != 2 {
		t.Fatalf("recorded %d requests, want the challenge and the upgrade", len(reqs))
	}
	for _, enc := range []string{secret, base64.StdEncoding.EncodeToString([]byte(secret)), base64.RawURLEncoding.EncodeToString([]byte(secret)), fmt.Sprintf("%x", secret)} {
		for _, r := range reqs {
			if bytes.Contains(r, []byte(enc)) {
				t.Errorf("a peer-link request carries the secret (%q):\n%s", enc, r)
			}
		}
	}

	// Replay the captured upgrade, headers as they were, straight to the
	// node: the challenge is spent.
	upgrade := hdrs[1]
	replay := http.Header{}
	for _, k := range []string{hdrNode, hdrIncarnation, hdrChallenge, hdrNonce, hdrProof} {
		if upgrade.Get(k) == "" {
			t.Fatalf("the upgrade has no %s", k)
		}
		replay.Set(k, upgrade.Get(k))
	}
	expectRefused(ctx, t, b.addr, replay, "a replayed handshake")

	// A proof made with another secret for a fresh challenge is refused
	// too, and leaves the node unverified.
	rogue := newLinkAuth([]byte("another-secret"), "node-r")
	ch, err := fetchChallenge(ctx, b.addr)
	if err != nil {
		t.Fatal(err)
	}
	tr := linkTranscript{dialer: "node-r", server: "node-b", dialerInc: 1, challenge: ch, nonce: newNonce()}
	forged := http.Header{}
	forged.Set(hdrNode, tr.dialer)
	forged.Set(hdrIncarnation, "1")
	forged.Set(hdrChallenge, tr.challenge)
	forged.Set(hdrNonce, tr.nonce)
	forged.Set(hdrProof, rogue.dialerProof(tr))
	expectRefused(ctx, t, b.addr, forged, "a proof with a wrong secret")
	if b.cl.isVerified("node-r", 1) {
		t.Error("a node with a wrong secret was verified")
	}
}

// expectRefused upgrades to addr's /v1/peer with h and wants HTTP 401.
func expectRefused(ctx context.Context, t *testing.T, addr string, h http.Header, what string) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{peerSubprotocol}, HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.DialContext(ctx, "ws://"+addr+"/v1/peer", h)
	if err == nil {
		_ = ws.Close()
		t.Fatalf("%s opened a link", what)
	}
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("%s: want HTTP 401, got %v (%v)", what, resp, err)
	}
	_ = resp.Body.Close()
}

func fetchChallenge(ctx context.Context, addr string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/peer", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	_ = resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	ch := resp.Header.Get(hdrChallenge)
	if resp.StatusCode != http.StatusUnauthorized || ch == "" {
		return "", fmt.Errorf("challenge: HTTP %d, %q", resp.StatusCode, ch)
	}
	return ch, nil
}

// A peer that sends a message over LinkMaxMessage is cut off, and counted.
func TestPeerLinkOversizedMessageCutsLink(t *testing.T) {
	const secret = "peer-link-test-secret-0123456789abcdef"
	a := startLinkNode(t, "node-a", secret, 0)
	b := startLinkNode(t, "node-b", secret, 64<<10, a.cl.GossipAddr())
	var l *link
	testutil.CheckFor(t, 20*time.Second, func() error {
		if l = a.cl.linkOf("node-b"); l == nil {
			return errors.New("no link from node-a to node-b")
		}
		return nil
	})
	l.send(&linkFrame{T: lfEvent, R: "x", F: make([]byte, 128<<10)})
	testutil.CheckFor(t, 10*time.Second, func() error {
		if n := b.metrics.oversized.Load(); n != 1 {
			return fmt.Errorf("node-b counted %d oversized messages", n)
		}
		select {
		case <-l.done:
			return nil
		default:
			return errors.New("the link is still up")
		}
	})
}

// isVerified reports whether c verified name in incarnation inc.
func (c *Cluster) isVerified(name string, inc int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.verified[name].inc == inc
}

// A peer can prove the secret on a link before gossip has told this node of
// it: a node that joins a cluster through this one dials it as soon as its
// join returns. The proof must still count once gossip catches up, since
// nothing proves the peer again while the link stays up; the node used to
// forget it at its next refresh, and then never placed the peer.
func TestLinkVerifiedBeforeGossipKnowsDialer(t *testing.T) {
	const secret = "peer-link-test-secret-0123456789abcdef"
	a := startLinkNode(t, "node-a", secret, 0) // a cluster of its own at once
	testutil.CheckFor(t, 5*time.Second, func() error {
		if !a.cl.Formed() {
			return errors.New("node-a has not formed")
		}
		return nil
	})
	// node-b's gossip cannot reach node-a yet, so node-a does not know it.
	faults := membership.NewFaults()
	faults.Cut("node-a", a.cl.GossipAddr())
	b := startLinkNodeFaults(t, "node-b", secret, 0, faults, a.cl.GossipAddr())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, br, err := b.cl.dial(ctx, "node-a", a.addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	b.cl.adoptLink("node-a", conn, br, true)
	testutil.CheckFor(t, 5*time.Second, func() error {
		if !a.cl.isVerified("node-b", b.cl.incarnation) {
			return errors.New("node-a did not verify node-b")
		}
		return nil
	})
	a.cl.refresh() // node-a's view lacks node-b here
	if _, ok := a.cl.ml.Node("node-b"); ok {
		t.Fatal("node-a's gossip knows node-b before the cut is healed")
	}

	faults.Heal() // node-b's seed retries reach node-a now
	testutil.CheckFor(t, 15*time.Second, func() error {
		if m := a.cl.Placement().Members(); !slices.Contains(m, "node-b") {
			return fmt.Errorf("node-a places %v", m)
		}
		return nil
	})
}
