package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A real roomd process, sent SIGTERM, answers /readyz with 503 draining for
// drain_delay while it still serves (/healthz, the API), and only then
// closes its listener and exits 0.
func TestDrainDelayOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real process")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const delay = 1500 * time.Millisecond
	stderr := &syncBuffer{}
	cmd := exec.Command(exe, "serve", "--addr", "127.0.0.1:0", "--log-format", "json", "--drain-delay", delay.String())
	cmd.Env = append(os.Environ(), envRunAsRoomd+"=1")
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	var addr string
	checkFor(t, 10*time.Second, func() error {
		if addr = listeningAddr(stderr.String()); addr == "" {
			return errors.New("not listening yet")
		}
		return nil
	})
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string) (int, string, error) {
		resp, err := hc.Get("http://" + addr + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b)), nil
	}
	if code, body, err := get("/readyz"); err != nil || code != http.StatusOK || body != "ready" {
		t.Fatalf("/readyz before SIGTERM: %d %q %v", code, body, err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	checkFor(t, time.Second, func() error {
		if code, body, err := get("/readyz"); err != nil || code != http.StatusServiceUnavailable || body != "draining" {
			return fmt.Errorf("/readyz after SIGTERM: %d %q %v", code, body, err)
		}
		return nil
	})
	// Serving on: liveness and the rest answer, readiness says draining,
	// until the delay has passed.
	for time.Since(signalled) < delay-300*time.Millisecond {
		if code, body, err := get("/readyz"); err != nil || code != http.StatusServiceUnavailable || body != "draining" {
			t.Fatalf("/readyz %s after SIGTERM: %d %q %v", time.Since(signalled), code, body, err)
		}
		if code, _, err := get("/healthz"); err != nil || code != http.StatusOK {
			t.Fatalf("/healthz %s after SIGTERM: %d %v", time.Since(signalled), code, err)
		}
		if code, _, err := get("/v1/info"); err != nil || code != http.StatusOK {
			t.Fatalf("/v1/info %s after SIGTERM: %d %v", time.Since(signalled), code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case err := <-exited:
		exited <- err
		t.Fatalf("roomd exited %s after SIGTERM, before the drain delay (%v):\n%s", time.Since(signalled), err, stderr)
	default:
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("roomd: %v\n%s", err, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("roomd did not stop after SIGTERM:\n%s", stderr)
	}
	if took := time.Since(signalled); took < delay {
		t.Fatalf("roomd stopped %s after SIGTERM, before the drain delay %s", took, delay)
	}
	if _, _, err := get("/healthz"); err == nil {
		t.Fatal("still listening after exit")
	}
}
