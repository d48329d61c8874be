package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/roomd/roomd/internal/config"
)

// runDevCluster is `roomd dev-cluster`: a local cluster of N nodes, child
// processes of this binary on 127.0.0.1, for trying the cluster out. It
// runs until SIGINT or SIGTERM, then stops the nodes one by one, each
// handing its rooms to the others; a second signal kills them at once.
func runDevCluster(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("roomd dev-cluster", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	n := fs.Int("n", 3, "")
	base := fs.Int("base-port", 8080, "")
	gossip := fs.Int("gossip-base-port", 7946, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, devClusterUsage)
			return nil
		}
		return usageError("dev-cluster", err)
	}
	if *n < 1 || *n > 64 {
		return usageError("dev-cluster", fmt.Errorf("-n %d: want 1 to 64 nodes", *n))
	}
	for _, p := range []struct {
		name string
		port int
	}{{"--base-port", *base}, {"--gossip-base-port", *gossip}} {
		if p.port < 1 || p.port+*n-1 > 65535 {
			return usageError("dev-cluster", fmt.Errorf("%s %d: the ports of %d nodes do not fit in 1-65535", p.name, p.port, *n))
		}
	}
	if *base < *gossip+*n && *gossip < *base+*n {
		return usageError("dev-cluster", fmt.Errorf("the HTTP ports (%d+) and the gossip ports (%d+) overlap", *base, *gossip))
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	dc := devClusterConfig{Exe: exe, Extra: fs.Args(), Stdout: stdout, Stderr: stderr}
	for i := 0; i < *n; i++ {
		dc.HTTPPorts = append(dc.HTTPPorts, *base+i)
		dc.GossipPorts = append(dc.GossipPorts, *gossip+i)
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, stop := context.WithCancel(context.Background())
	force, kill := context.WithCancel(context.Background())
	defer stop()
	defer kill()
	go func() {
		select {
		case <-sigs:
		case <-force.Done():
			return
		}
		stop()
		select {
		case <-sigs:
			kill()
		case <-force.Done():
		}
	}()
	return devCluster(ctx, force, dc)
}

const devClusterUsage = `Usage: roomd dev-cluster [-n 3] [--base-port 8080] [--gossip-base-port 7946] [-- serve flags]

Starts a local cluster of n roomd nodes for trying the cluster out: child
processes of this binary on 127.0.0.1, node i serving HTTP on base-port+i and
gossiping on gossip-base-port+i, with fast failure detection
(--cluster-fast) and a generated cluster secret. The nodes start at once,
each with the others as seeds and --cluster-expect n: they form one cluster
once all n see each other, and serve no room before. It prints each node's URL,
forwards the nodes' logs prefixed with their names, and on Ctrl-C (SIGINT)
or SIGTERM stops the nodes one by one, each handing its rooms to the others
(a second Ctrl-C kills them at once). Flags after -- go to every node, e.g.
-- --jwt-secret "$SECRET" --log-level debug. Without token keys the nodes run
in dev mode. Kill one node (kill -9 PID) to watch the others take its rooms
over. Not for production: see docs/OPERATIONS.md §13.
`

// devClusterConfig describes a local cluster: one node per HTTP port.
type devClusterConfig struct {
	// Exe is the roomd binary the nodes run.
	Exe string
	// Env is added to the nodes' environment (this process's).
	Env []string
	// HTTPPorts and GossipPorts are the nodes' ports on 127.0.0.1.
	HTTPPorts, GossipPorts []int
	// Extra flags for every node, after the ones dev-cluster sets.
	Extra []string
	// Stdout gets the nodes' URLs; Stderr their logs and dev-cluster's.
	Stdout, Stderr io.Writer
	// StopTimeout bounds one node's graceful stop before it is killed.
	// Zero means 20 s.
	StopTimeout time.Duration
}

// devNode is one child process of a dev cluster.
type devNode struct {
	name, url, gossip string
	cmd               *exec.Cmd
	exited            chan struct{} // closed when the process has exited
	err               error         // its exit status, once exited
	logs              chan struct{} // closed when its output is drained
}

// lineWriter writes whole lines from several goroutines.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) println(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(l.w, s)
}

// devCluster runs a local cluster until ctx ends, then stops it; force
// ending kills the nodes left at once.
func devCluster(ctx, force context.Context, dc devClusterConfig) error {
	if dc.StopTimeout <= 0 {
		dc.StopTimeout = 20 * time.Second
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	logs := &lineWriter{w: dc.Stderr}
	var nodes []*devNode
	defer func() {
		// Whatever happened, no node outlives this function.
		for _, n := range nodes {
			_ = n.cmd.Process.Kill()
			<-n.exited
			<-n.logs
		}
	}()
	gossips := make([]string, len(dc.GossipPorts))
	for i, port := range dc.GossipPorts {
		gossips[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	// Every node starts at once, with the others as seeds, and waits for
	// all of them (cluster.expect) to bootstrap one cluster together.
	for i, port := range dc.HTTPPorts {
		n := &devNode{
			name:   fmt.Sprintf("dev-%d", i),
			url:    "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			gossip: gossips[i],
		}
		args := []string{"serve",
			"--addr", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			"--node-name", n.name,
			"--cluster-bind", n.gossip,
			"--cluster-label", "roomd-dev",
			"--cluster-fast",
			"--cluster-expect", strconv.Itoa(len(dc.HTTPPorts)),
			"--shutdown-grace", "5s",
			"--drain-delay", "-1s", // no load balancer polls /readyz here
			"--log-format", "text",
		}
		seeds := slices.Delete(slices.Clone(gossips), i, i+1)
		if len(seeds) > 0 {
			args = append(args, "--join", strings.Join(seeds, ","))
		}
		args = append(args, dc.Extra...)
		if err := n.start(dc, args, secret, logs); err != nil {
			return err
		}
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		if err := n.waitReady(ctx, 20*time.Second); err != nil {
			devStop(nodes, dc.StopTimeout, force, logs)
			return err
		}
	}
	fmt.Fprintf(dc.Stdout, "roomd dev-cluster: %d nodes on 127.0.0.1, fast failure detection\n", len(nodes))
	for _, n := range nodes {
		fmt.Fprintf(dc.Stdout, "  %s  %s  (gossip %s, pid %d)\n", n.name, n.url, n.gossip, n.cmd.Process.Pid)
	}
	fmt.Fprintf(dc.Stdout, "Demos at %s/, members at %s/v1/cluster. Ctrl-C stops every node.\n", nodes[0].url, nodes[0].url)

	// Run until told to stop. A node that exits (killed to watch a
	// failover) is reported; the others go on.
	running := len(nodes)
	exits := make(chan *devNode, len(nodes))
	for _, n := range nodes {
		go func() { <-n.exited; exits <- n }()
	}
	for running > 0 {
		select {
		case <-ctx.Done():
			logs.println("roomd dev-cluster: stopping the nodes one by one")
			devStop(nodes, dc.StopTimeout, force, logs)
			return nil
		case n := <-exits:
			running--
			logs.println(fmt.Sprintf("roomd dev-cluster: %s exited (%v); %d nodes left", n.name, n.status(), running))
		}
	}
	return errors.New("dev-cluster: every node has exited")
}

// start runs the node's process, its output forwarded line by line with
// the node's name in front.
func (n *devNode) start(dc devClusterConfig, args []string, secret []byte, logs *lineWriter) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	n.cmd = exec.Command(dc.Exe, args...)
	// The secret goes through the environment, not the command line that
	// ps shows.
	n.cmd.Env = append(append(os.Environ(), dc.Env...), config.EnvName("cluster-secret")+"="+hex.EncodeToString(secret))
	n.cmd.Stdout, n.cmd.Stderr = w, w
	n.cmd.SysProcAttr = devProcAttr()
	err = n.cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return fmt.Errorf("dev-cluster: starting %s: %w", n.name, err)
	}
	n.exited, n.logs = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(n.logs)
		defer r.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			logs.println(n.name + " | " + sc.Text())
		}
	}()
	go func() {
		n.err = n.cmd.Wait()
		close(n.exited)
	}()
	return nil
}

// status describes how the process exited.
func (n *devNode) status() string {
	if n.err == nil {
		return "exit status 0"
	}
	return n.err.Error()
}

// waitReady waits until the node answers /readyz.
func (n *devNode) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/readyz", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-n.exited:
			return fmt.Errorf("dev-cluster: %s exited at start (%v); its log is above", n.name, n.status())
		case <-ctx.Done():
			return fmt.Errorf("dev-cluster: %s is not ready at %s after %s", n.name, n.url, timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// devStop stops the nodes still running, the last started first, one at a
// time so that each hands its rooms to nodes that stay: SIGTERM, then
// SIGKILL after timeout or once force ends.
func devStop(nodes []*devNode, timeout time.Duration, force context.Context, logs *lineWriter) {
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		select {
		case <-n.exited:
			continue
		default:
		}
		if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			_ = n.cmd.Process.Kill()
		}
		t := time.NewTimer(timeout)
		select {
		case <-n.exited:
		case <-t.C:
			logs.println(fmt.Sprintf("roomd dev-cluster: %s did not stop within %s; killing it", n.name, timeout))
			_ = n.cmd.Process.Kill()
			<-n.exited
		case <-force.Done():
			for _, m := range nodes[:i+1] {
				_ = m.cmd.Process.Kill()
			}
			<-n.exited
		}
		t.Stop()
	}
}
