package hooks

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

var testSecret = []byte("test-secret")

// testBackend is a real HTTP backend on a loopback port that verifies each
// request's signature and records it.
type testBackend struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	reqs    []recorded
	mode    string                         // "", "500", "slow"
	answers map[Name]func(body []byte) any // answer by hook; nil: {"allow":true}
	block   chan struct{}                  // closed at cleanup: releases slow handlers
}

type recorded struct {
	hook Name
	body []byte
	sig  error
	ok   bool // answered 2xx
}

func newTestBackend(t *testing.T) *testBackend {
	b := &testBackend{t: t, answers: map[Name]func([]byte) any{}, block: make(chan struct{})}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(func() {
		close(b.block)
		b.srv.Close()
	})
	return b
}

func (b *testBackend) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	hook := Name(r.Header.Get(HookHeader))
	err := Verify(r.Header.Get(SignatureHeader), body, time.Now(), 0, testSecret)
	b.mu.Lock()
	mode, answer := b.mode, b.answers[hook]
	b.reqs = append(b.reqs, recorded{hook, body, err, mode == "" && err == nil})
	b.mu.Unlock()
	switch mode {
	case "500":
		http.Error(w, "broken", http.StatusInternalServerError)
		return
	case "slow":
		select {
		case <-b.block:
		case <-r.Context().Done():
		}
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var out any = map[string]any{"allow": true}
	if answer != nil {
		out = answer(body)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// failures counts the requests answered with an error.
func (b *testBackend) failures() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, r := range b.reqs {
		if !r.ok {
			n++
		}
	}
	return n
}

func (b *testBackend) setMode(m string) {
	b.mu.Lock()
	b.mode = m
	b.mu.Unlock()
}

func (b *testBackend) answer(h Name, f func(body []byte) any) {
	b.mu.Lock()
	b.answers[h] = f
	b.mu.Unlock()
}

func (b *testBackend) requests() []recorded {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]recorded(nil), b.reqs...)
}

// deadURL returns a loopback URL where nothing listens.
func deadURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/hooks"
}

// newTestHooks returns Hooks for every room hook at url, closed at cleanup.
func newTestHooks(t *testing.T, url string, mod func(*Config)) *Hooks {
	t.Helper()
	cfg := Config{
		Secret: testSecret, ConnectURL: url,
		Default:  Namespace{URL: url, Hooks: []Name{Join, Publish, Published, Occupied, Vacated}, Timeout: 200 * time.Millisecond},
		RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond, RetryAttempts: 3,
		BreakerFailures: 1000,
	}
	if mod != nil {
		mod(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return h
}
