package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/roomd/roomd/internal/config"
	"github.com/roomd/roomd/internal/testnode"
)

func benchTestServer(t *testing.T) string {
	url, _ := testnode.Start(t, "bench-cmd-test", nil)
	return url
}

func TestBenchCommandJSON(t *testing.T) {
	url := benchTestServer(t)
	for _, sc := range []string{"fanout", "chat"} {
		var out, errOut bytes.Buffer
		args := []string{"--scenario", sc, "--url", url, "--rooms", "2", "--subs", "3", "--rate", "40",
			"--duration", "500ms", "--warmup", "100ms", "--json", "--sched-batch=false"}
		if err := benchCommand(context.Background(), args, &out, &errOut, nil); err != nil {
			t.Fatalf("%s: %v\n%s", sc, err, errOut.String())
		}
		var res struct {
			Scenario      string             `json:"scenario"`
			PublishedPerS float64            `json:"published_per_s"`
			Expected      int64              `json:"expected"`
			Delivered     int64              `json:"delivered"`
			Lost          int64              `json:"lost"`
			Latency       map[string]float64 `json:"latency_ms"`
			Errors        map[string]int64   `json:"errors"`
		}
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("%s: %v\n%s", sc, err, out.String())
		}
		if res.Scenario != sc || res.PublishedPerS <= 0 || res.Expected == 0 || res.Delivered != res.Expected ||
			res.Lost != 0 || res.Latency["p99"] <= 0 || len(res.Errors) != 0 {
			t.Errorf("%s: %s", sc, out.String())
		}
	}
}

func TestBenchCommandTable(t *testing.T) {
	url := benchTestServer(t)
	var out, errOut bytes.Buffer
	args := []string{"--scenario", "connect", "--url", url, "--conns", "20", "--rooms", "4", "--duration", "50ms", "--sched-batch=false"}
	if err := benchCommand(context.Background(), args, &out, &errOut, nil); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	for _, want := range []string{"connect: 20 connections over 4 rooms", "20 open, 0 failed", "hello+join/s", "errors", "none"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBenchCommandErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--scenario", "nope"},
		{"--size", "3"},
		{"--bogus"},
		{"extra"},
	} {
		var out, errOut bytes.Buffer
		if err := benchCommand(context.Background(), args, &out, &errOut, nil); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
	var out, errOut bytes.Buffer
	if err := benchCommand(context.Background(), []string{"-h"}, &out, &errOut, nil); err != nil || !strings.Contains(errOut.String(), "--non-readers") && !strings.Contains(errOut.String(), "-non-readers") {
		t.Errorf("-h: %v\n%s", err, errOut.String())
	}
}

func TestPerConnRateWarning(t *testing.T) {
	var out, errOut bytes.Buffer
	// Nothing listens on port 1: the run fails fast, after the warning.
	args := []string{"--url", "http://127.0.0.1:1", "--rate", "1000", "--subs", "1", "--dial-timeout", "1s", "--sched-batch=false"}
	_ = benchCommand(context.Background(), args, &out, &errOut, nil)
	if !strings.Contains(errOut.String(), "--frame-rate") {
		t.Errorf("no rate warning:\n%s", errOut.String())
	}
}

// roomd bench's hints name the server's defaults.
func TestBenchHintsMatchServerDefaults(t *testing.T) {
	l := mustLoad(t, config.Sources{}).Limits
	if l.FrameRate != defaultServerFrameRate || l.ConnRatePerAddr != defaultServerConnRatePerAddr ||
		l.MaxPendingPerAddr != defaultServerPendingPerAddr {
		t.Errorf("server defaults %v frames/s, %v connections/s, %d pending; bench's hints say %d, %d, %d",
			l.FrameRate, l.ConnRatePerAddr, l.MaxPendingPerAddr,
			defaultServerFrameRate, defaultServerConnRatePerAddr, defaultServerPendingPerAddr)
	}
}
