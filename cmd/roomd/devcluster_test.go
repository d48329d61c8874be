package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freePorts finds n ports free on 127.0.0.1, for TCP and, with udp, for
// UDP too.
func freePorts(t *testing.T, n int, udp bool) []int {
	t.Helper()
	var ports []int
	var held []interface{ Close() error }
	defer func() {
		for _, h := range held {
			h.Close()
		}
	}()
	for len(ports) < n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, ln)
		port := ln.Addr().(*net.TCPAddr).Port
		if udp {
			pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err != nil {
				continue
			}
			held = append(held, pc)
		}
		ports = append(ports, port)
	}
	return ports
}

// roomd dev-cluster, with this test binary standing in for roomd: three
// nodes form one cluster; one killed is reported and the others go on;
// stopping stops the rest, one by one, and leaves no process behind.
func TestDevCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Ports are found free and then released for the nodes to bind, so a
	// test in another package may take one meanwhile: then the cluster does
	// not form, and the start is tried again on fresh ports.
	var (
		httpPorts      []int
		stop, kill     context.CancelFunc
		stdout, stderr *syncBuffer
		done           chan error
		pids           map[string]int
		members        func(port int) (map[string]string, error)
	)
	for attempt := 1; ; attempt++ {
		var formed error
		httpPorts, _, stop, kill, stdout, stderr, done, pids, members, formed = startDevCluster(t, exe)
		if formed == nil {
			break
		}
		stop()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			kill()
			<-done
		}
		kill()
		if attempt == 3 {
			t.Fatalf("no cluster after %d starts: %v\nstdout:\n%s\nstderr:\n%s", attempt, formed, stdout, stderr)
		}
		t.Logf("start %d: %v; again on fresh ports", attempt, formed)
	}
	defer kill()
	defer stop()

	// A node killed is reported; the others find it dead (or, later,
	// forget it).
	sendSignal(t, pids["dev-1"], syscall.SIGKILL)
	checkFor(t, 15*time.Second, func() error {
		got, err := members(httpPorts[0])
		if err != nil {
			return err
		}
		if got["dev-1"] == "alive" || !strings.Contains(stderr.String(), "roomd dev-cluster: dev-1 exited") {
			return fmt.Errorf("members %v", got)
		}
		return nil
	})

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev-cluster: %v", err)
		}
	case <-time.After(45 * time.Second):
		t.Fatalf("dev-cluster did not stop:\n%s", stderr)
	}
	logs := stderr.String()
	for _, want := range []string{"dev-0 | ", "dev-2 | ", "stopping the nodes one by one", `dev-2 | time=`, "msg=\"rooms handed over\"", "msg=stopped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the forwarded logs lack %q:\n%s", want, logs)
		}
	}
	stopped := func(name string) int {
		for i, line := range strings.Split(logs, "\n") {
			if strings.HasPrefix(line, name+" | ") && strings.Contains(line, "msg=stopped") {
				return i
			}
		}
		return -1
	}
	if s2, s0 := stopped("dev-2"), stopped("dev-0"); s2 < 0 || s0 < 0 || s2 > s0 {
		t.Errorf("dev-2 stopped at line %d, dev-0 at %d: want the last started first", s2, s0)
	}
	for name, pid := range pids {
		if processRuns(pid) {
			t.Errorf("%s (pid %d) still runs", name, pid)
		}
	}
}

func TestDevClusterUsage(t *testing.T) {
	code, out, _ := runCLI(t, "dev-cluster", "-h")
	if code != 0 || !strings.Contains(out, "roomd dev-cluster [-n 3]") {
		t.Errorf("dev-cluster -h: exit %d\n%s", code, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "0"}, "want 1 to 64 nodes"},
		{[]string{"--base-port", "65535", "-n", "3"}, "do not fit"},
		{[]string{"--base-port", "7945", "-n", "3"}, "overlap"},
		{[]string{"--bogus"}, "bogus"},
	} {
		code, _, errOut := runCLI(t, append([]string{"dev-cluster"}, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// startDevCluster runs roomd dev-cluster with three nodes on fresh ports and
// waits for it to say it is up; formed tells whether node 0 then sees all
// three alive.
func startDevCluster(t *testing.T, exe string) (httpPorts, gossipPorts []int, stop, kill context.CancelFunc,
	stdout, stderr *syncBuffer, done chan error, pids map[string]int,
	members func(port int) (map[string]string, error), formed error) {
	t.Helper()
	httpPorts, gossipPorts = freePorts(t, 3, false), freePorts(t, 3, true)
	ctx, stop := context.WithCancel(context.Background())
	force, kill := context.WithCancel(context.Background())
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	done = make(chan error, 1)
	go func() {
		done <- devCluster(ctx, force, devClusterConfig{
			Exe: exe, Env: []string{envRunAsRoomd + "=1"},
			HTTPPorts: httpPorts, GossipPorts: gossipPorts,
			Extra:  []string{"--log-level", "info"},
			Stdout: stdout, Stderr: stderr, StopTimeout: 15 * time.Second,
		})
	}()
	checkFor(t, 60*time.Second, func() error {
		select {
		case err := <-done:
			t.Fatalf("dev-cluster returned %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
		default:
		}
		if !strings.Contains(stdout.String(), "Ctrl-C stops every node") {
			return fmt.Errorf("not up yet")
		}
		return nil
	})
	out := stdout.String()
	pids = map[string]int{}
	for _, m := range regexp.MustCompile(`(dev-\d)  (http://\S+)  \(gossip \S+, pid (\d+)\)`).FindAllStringSubmatch(out, -1) {
		pids[m[1]], _ = strconv.Atoi(m[3])
	}
	for i, port := range httpPorts {
		if want := fmt.Sprintf("dev-%d  http://127.0.0.1:%d", i, port); !strings.Contains(out, want) || pids[fmt.Sprintf("dev-%d", i)] == 0 {
			t.Errorf("the URLs printed do not list %q:\n%s", want, out)
		}
	}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	members = func(port int) (map[string]string, error) {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/v1/cluster", port))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var v struct {
			Members []struct{ Name, State string }
		}
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			return nil, err
		}
		got := map[string]string{}
		for _, m := range v.Members {
			got[m.Name] = m.State
		}
		return got, nil
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var got map[string]string
		if got, formed = members(httpPorts[0]); formed == nil {
			if got["dev-0"] != "alive" || got["dev-1"] != "alive" || got["dev-2"] != "alive" {
				formed = fmt.Errorf("members %v", got)
			}
		}
		if formed == nil {
			break
		}
	}
	return httpPorts, gossipPorts, stop, kill, stdout, stderr, done, pids, members, formed

}
