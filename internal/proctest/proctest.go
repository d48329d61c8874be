package proctest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/roomd/roomd/cluster"
	"github.com/roomd/roomd/internal/testutil"
)

// Secret is the cluster secret every node gets.
const Secret = "process-test-cluster-secret-0123456789"

// httpClient talks to the nodes' HTTP APIs without keeping connections.
var httpClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// Build builds roomd from this tree into the test's temporary directory
// and returns its path. It skips the test under -short or without a go
// command.
func Build(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds roomd and runs real processes")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build roomd with")
	}
	bin := filepath.Join(t.TempDir(), "roomd")
	build := exec.Command(gobin, "build", "-o", bin, "github.com/roomd/roomd/cmd/roomd")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// Options are the settings of the nodes a test starts.
type Options struct {
	// Bin is the roomd binary (Build). Required.
	Bin string
	// Label is the cluster label. Empty means "process-test".
	Label string
	// Fast adds --cluster-fast.
	Fast bool
	// Args are added to every node's command line.
	Args []string
}

// Node is one roomd process, and the name and addresses it keeps across
// restarts.
type Node struct {
	Name   string
	URL    string // http://127.0.0.1:port
	Gossip string // 127.0.0.1:port
	Logs   *Log

	t     testing.TB
	opt   Options
	addr  string // host:port of --addr
	seeds []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // the exit status, once exited
}

// Log keeps a process's output.
type Log struct{ testutil.SyncBuffer }

// Record returns the first JSON log record whose msg is msg.
func (l *Log) Record(msg string) (map[string]any, bool) {
	for _, line := range strings.Split(l.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			return rec, true
		}
	}
	return nil, false
}

// Start starts node name on loopback ports it picks itself, joining seeds
// (gossip addresses), and waits until it has logged where it listens and
// gossips. The process is killed when the test ends.
func Start(t testing.TB, opt Options, name string, seeds ...string) *Node {
	t.Helper()
	n := Launch(t, opt, name, "127.0.0.1:0", seeds...)
	n.WaitListening()
	return n
}

// Launch starts node name gossiping at gossip (127.0.0.1:0 picks a port),
// joining seeds, without waiting for it: nodes started together start
// together. WaitListening waits for its addresses.
func Launch(t testing.TB, opt Options, name, gossip string, seeds ...string) *Node {
	t.Helper()
	n := &Node{Name: name, t: t, opt: opt, addr: "127.0.0.1:0", Gossip: gossip, seeds: seeds}
	n.spawn()
	t.Cleanup(func() {
		n.Kill()
		if t.Failed() {
			out := n.Logs.String()
			if dir := os.Getenv("ROOMD_TEST_LOGDIR"); dir != "" { // diagnostics: whole logs
				_ = os.WriteFile(filepath.Join(dir, n.Name+".log"), []byte(out), 0o644)
			}
			t.Logf("%s's log (last 6000 bytes):\n%s", n.Name, out[max(0, len(out)-6000):])
		}
	})
	return n
}

func (n *Node) args() []string {
	label := n.opt.Label
	if label == "" {
		label = "process-test"
	}
	args := []string{"serve",
		"--addr", n.addr,
		"--node-name", n.Name,
		"--cluster-bind", n.Gossip,
		"--cluster-label", label,
		"--log-format", "json",
		"--shutdown-grace", "5s",
		"--frame-rate", "10000",
		// A grace far longer than a test's bounds: a dead node's members
		// must leave when it is declared dead, not when their grace ends
		// (its killed sockets reset before the declaration).
		"--presence-grace", "30s",
	}
	if n.opt.Fast {
		args = append(args, "--cluster-fast")
	}
	if os.Getenv("ROOMD_TEST_DEBUG") != "" {
		args = append(args, "--log-level", "debug") // diagnostics: the logs of a failed test
	}
	if len(n.seeds) > 0 {
		args = append(args, "--join", strings.Join(n.seeds, ","))
	}
	return append(args, n.opt.Args...)
}

// start runs the process and waits for its addresses.
func (n *Node) start() {
	n.t.Helper()
	n.spawn()
	n.WaitListening()
}

// spawn starts the process.
func (n *Node) spawn() {
	t := n.t
	t.Helper()
	cmd := exec.Command(n.opt.Bin, n.args()...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ROOMD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "ROOMD_CLUSTER_SECRET="+Secret)
	logs := &Log{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.exited, n.err, n.Logs = cmd, exited, nil, logs
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		n.mu.Lock()
		n.err = err
		n.mu.Unlock()
		close(exited)
	}()
}

// WaitListening waits until the node has logged where it listens and
// gossips, and records those addresses.
func (n *Node) WaitListening() {
	t := n.t
	t.Helper()
	n.mu.Lock()
	exited, logs := n.exited, n.Logs
	n.mu.Unlock()
	testutil.CheckFor(t, 15*time.Second, func() error {
		select {
		case <-exited:
			t.Fatalf("%s exited at start: %v\n%s", n.Name, n.ExitErr(), logs)
		default:
		}
		ls, ok1 := logs.Record("listening")
		cm, ok2 := logs.Record("cluster member")
		if !ok1 || !ok2 {
			return errors.New(n.Name + " has not logged its addresses yet")
		}
		n.URL = "http://" + fmt.Sprint(ls["addr"])
		n.addr = fmt.Sprint(ls["addr"])
		n.Gossip = fmt.Sprint(cm["gossip"])
		return nil
	})
}

// Restart starts the node again, after it exited: the same name and
// addresses, an empty memory, joining seeds (the others' Gossip).
func (n *Node) Restart(seeds ...string) {
	n.t.Helper()
	select {
	case <-n.Exited():
	default:
		n.t.Fatalf("%s restarted while it runs", n.Name)
	}
	n.seeds = seeds
	n.start()
}

// Exited is closed when the process has exited.
func (n *Node) Exited() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.exited
}

// ExitErr is the process's exit status, once it exited.
func (n *Node) ExitErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// Signal sends sig to the process.
func (n *Node) Signal(sig os.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd.Process.Signal(sig)
}

// Kill ends the process with SIGKILL, if it still runs, and waits for it.
// A stopped process is killed too.
func (n *Node) Kill() {
	select {
	case <-n.Exited():
		return
	default:
	}
	_ = n.Signal(syscall.SIGKILL)
	<-n.Exited()
}

// Term stops the process gracefully (SIGTERM) and waits up to timeout for
// it to exit; the error is its exit status, or a timeout.
func (n *Node) Term(timeout time.Duration) error {
	if err := n.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-n.Exited():
		return n.ExitErr()
	case <-time.After(timeout):
		return fmt.Errorf("%s did not exit within %v of SIGTERM", n.Name, timeout)
	}
}

// View is GET /v1/cluster.
type View struct {
	Node    string
	Members []cluster.NodeInfo
}

// ClusterView asks the node for its view of the cluster.
func (n *Node) ClusterView() (View, error) {
	var v View
	resp, err := httpClient.Get(n.URL + "/v1/cluster")
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return v, fmt.Errorf("GET /v1/cluster: %s", resp.Status)
	}
	return v, json.NewDecoder(resp.Body).Decode(&v)
}

// StartCluster starts n nodes, prefix-a, prefix-b, ..., that join through
// the first, and waits until each sees them all alive with one placement.
func StartCluster(t testing.TB, opt Options, prefix string, n int) []*Node {
	t.Helper()
	first := Start(t, opt, prefix+"-a")
	nodes := []*Node{first}
	for i := 1; i < n; i++ {
		nodes = append(nodes, Start(t, opt, fmt.Sprintf("%s-%c", prefix, 'a'+i), first.Gossip))
	}
	WaitFormed(t, nodes, 20*time.Second)
	return nodes
}

// WaitFormed waits up to timeout until each node sees exactly the nodes
// alive, with the same placement, and says it is settled: every partition
// has a leader it knows and the groups it leads have their replicas.
func WaitFormed(t testing.TB, nodes []*Node, timeout time.Duration) {
	t.Helper()
	testutil.CheckFor(t, timeout, func() error { return Formed(nodes) })
}

// Formed says why the nodes do not yet see each other alive with one
// placement, or is nil.
func Formed(nodes []*Node) error {
	var want []int
	for _, n := range nodes {
		v, err := n.ClusterView()
		if err != nil {
			return err
		}
		var parts []int
		alive := 0
		for _, m := range v.Members {
			switch m.State {
			case "alive":
				alive++
				parts = append(parts, m.Partitions)
				if m.Self && !m.Settled {
					return fmt.Errorf("%s is not settled: its groups are still moving", n.Name)
				}
			case "dead":
				// Listed until memberlist forgets it.
			default:
				return fmt.Errorf("%s sees %s %s", n.Name, m.Name, m.State)
			}
		}
		if alive != len(nodes) {
			return fmt.Errorf("%s sees %d members alive, not %d", n.Name, alive, len(nodes))
		}
		slices.Sort(parts)
		if want == nil {
			want = parts
		} else if !slices.Equal(parts, want) {
			return fmt.Errorf("%s has another placement: %v, not %v", n.Name, parts, want)
		}
	}
	return nil
}

// URLs lists the nodes' URLs starting at node first.
func URLs(nodes []*Node, first int) []string {
	var out []string
	for i := range nodes {
		out = append(out, nodes[(first+i)%len(nodes)].URL)
	}
	return out
}

// Names lists the nodes' names.
func Names(nodes []*Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	return out
}

// WaitDead polls the nodes' /v1/cluster until each says name is dead, up
// to timeout, and returns how long after start each did.
func WaitDead(t testing.TB, nodes []*Node, name string, start time.Time, timeout time.Duration) []time.Duration {
	t.Helper()
	seen := make([]time.Duration, len(nodes))
	testutil.CheckFor(t, timeout, func() error {
		for i, n := range nodes {
			if seen[i] != 0 {
				continue
			}
			v, err := n.ClusterView()
			if err != nil {
				return err
			}
			for _, m := range v.Members {
				if m.Name == name && m.State == "dead" {
					seen[i] = time.Since(start)
				}
			}
			if seen[i] == 0 {
				return fmt.Errorf("%s does not say %s is dead", n.Name, name)
			}
		}
		return nil
	})
	return seen
}
