package membership

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-sockaddr"

	"github.com/roomd/roomd/cluster/placement"
	"github.com/roomd/roomd/internal/testutil"
)

// startNode starts a Membership on 127.0.0.1 with a free port and Fast
// timings, shut down when the test ends.
func startNode(t *testing.T, name string, mod func(*Config)) *Membership {
	t.Helper()
	cfg := Config{
		NodeName: name,
		BindAddr: "127.0.0.1:0",
		Fast:     true,
		Meta:     NodeMeta{HTTPAddr: name + ".test:8080"},
	}
	if mod != nil {
		mod(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", name, err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return m
}

// waitFor polls fn until it is true, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// never polls fn for d and fails the test if it is ever true. It is for
// what must not happen, where waiting a while is the only proof.
func never(t *testing.T, d time.Duration, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if fn() {
			t.Fatalf("%s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func servingIs(want ...string) func(*Membership) bool {
	slices.Sort(want)
	return func(m *Membership) bool { return slices.Equal(m.Serving(), want) }
}

func allOf(ms []*Membership, fn func(*Membership) bool) func() bool {
	return func() bool {
		for _, m := range ms {
			if !fn(m) {
				return false
			}
		}
		return true
	}
}

// sees says whether m knows name, alive or not as asked.
func sees(m *Membership, name string, alive bool) bool {
	n, ok := m.Node(name)
	return ok && n.Alive == alive
}

// trio starts a, then b and c joining a and b: a cluster of three.
func trio(t *testing.T, mod func(*Config)) []*Membership {
	t.Helper()
	a := startNode(t, "a", mod)
	b := startNode(t, "b", func(c *Config) {
		c.Join = []string{a.GossipAddr()}
		if mod != nil {
			mod(c)
		}
	})
	c := startNode(t, "c", func(c *Config) {
		c.Join = []string{b.GossipAddr()}
		if mod != nil {
			mod(c)
		}
	})
	ms := []*Membership{a, b, c}
	waitFor(t, 5*time.Second, "three nodes do not see each other serving", allOf(ms, servingIs("a", "b", "c")))
	return ms
}

func TestMembershipThreeNodes(t *testing.T) {
	// OnChange per node: counted, and checked never to overlap itself.
	type counter struct{ calls, inFlight, overlap atomic.Int32 }
	counters := map[string]*counter{"a": {}, "b": {}, "c": {}}
	ms := trio(t, func(c *Config) {
		n := counters[c.NodeName]
		c.OnChange = func() {
			if n.inFlight.Add(1) > 1 {
				n.overlap.Add(1)
			}
			n.calls.Add(1)
			time.Sleep(time.Millisecond)
			n.inFlight.Add(-1)
		}
	})

	var tables []*placement.Table
	for _, m := range ms {
		tables = append(tables, placement.NewTable(m.Serving(), placement.DefaultPartitions, 1))
	}
	for i, tb := range tables[1:] {
		if tb.Version() != tables[0].Version() {
			t.Fatalf("node %d built table %x, node 0 %x", i+1, tb.Version(), tables[0].Version())
		}
		for p := range placement.DefaultPartitions {
			if tb.Owner(p) != tables[0].Owner(p) {
				t.Fatalf("partition %d: owner %s on node %d, %s on node 0", p, tb.Owner(p), i+1, tables[0].Owner(p))
			}
		}
	}

	for _, m := range ms {
		nodes := m.Nodes()
		if len(nodes) != 3 {
			t.Fatalf("%s: Nodes() = %v", m.Self().Name, nodes)
		}
		for i, n := range nodes {
			want := ms[i].Self()
			if n.Name != want.Name || n.Addr != want.Addr || n.Meta != want.Meta || !n.Alive {
				t.Errorf("%s sees %+v, the node itself says %+v", m.Self().Name, n, want)
			}
		}
	}
	self := ms[0].Self()
	if self.Name != "a" || !self.Alive || self.Meta.State != StateServing || self.Meta.Incarnation == 0 ||
		self.Addr != ms[0].GossipAddr() {
		t.Errorf("Self() = %+v (gossip addr %s)", self, ms[0].GossipAddr())
	}
	if _, ok := ms[0].Node("nobody"); ok {
		t.Error(`Node("nobody") found`)
	}
	for name, n := range counters {
		waitFor(t, time.Second, name+": OnChange was not called", func() bool { return n.calls.Load() >= 1 })
		if n.overlap.Load() != 0 {
			t.Errorf("%s: OnChange ran concurrently with itself %d times", name, n.overlap.Load())
		}
	}
}

func TestMembershipSetStateLeaving(t *testing.T) {
	ms := trio(t, nil)
	if err := ms[2].SetState(StateLeaving); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "c is still serving somewhere", allOf(ms, servingIs("a", "b")))
	for _, m := range ms {
		n, ok := m.Node("c")
		if !ok || !n.Alive || n.Meta.State != StateLeaving {
			t.Errorf("%s sees c as %+v, want alive and leaving", m.Self().Name, n)
		}
	}
	if err := ms[2].SetState(StateServing); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "c is not serving again", allOf(ms, servingIs("a", "b", "c")))
	if err := ms[0].SetState("resting"); err == nil {
		t.Error("SetState(resting) did not fail")
	}
}

func TestMembershipLeave(t *testing.T) {
	ms := trio(t, nil)
	start := time.Now()
	if err := ms[2].Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "the others still see c alive", allOf(ms[:2], func(m *Membership) bool {
		return sees(m, "c", false) && servingIs("a", "b")(m)
	}))
	t.Logf("a graceful leave was seen everywhere after %v", time.Since(start).Round(time.Millisecond))
	if ms[2].Self().Alive || slices.Contains(ms[2].Serving(), "c") {
		t.Errorf("after Leave, c says %+v, serving %v", ms[2].Self(), ms[2].Serving())
	}
	if err := ms[2].Leave(time.Second); err != nil {
		t.Errorf("second Leave: %v", err)
	}
	if err := ms[2].SetState(StateLeaving); !errors.Is(err, ErrClosed) {
		t.Errorf("SetState after Leave = %v, want ErrClosed", err)
	}
}

// TestMembershipCrashDetected shuts a node down without leaving, as a crash
// would, and measures how long the others take to declare it dead with the
// Fast timings.
func TestMembershipCrashDetected(t *testing.T) {
	var took []time.Duration
	for range 3 {
		ms := trio(t, nil)
		start := time.Now()
		if err := ms[2].Shutdown(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "the others still see c alive", allOf(ms[:2], func(m *Membership) bool {
			return sees(m, "c", false)
		}))
		took = append(took, time.Since(start).Round(time.Millisecond))
		if !slices.Equal(ms[0].Serving(), []string{"a", "b"}) {
			t.Errorf("serving after c's crash: %v", ms[0].Serving())
		}
		for _, m := range ms {
			_ = m.Shutdown()
		}
	}
	t.Logf("a crashed node was declared dead by both others after %v (Fast timings)", took)
}

func TestMembershipLabel(t *testing.T) {
	a := startNode(t, "a", func(c *Config) { c.Label = "blue" })
	b := startNode(t, "b", func(c *Config) {
		c.Label = "green"
		c.Join = []string{a.GossipAddr()}
		c.RejoinInterval = 100 * time.Millisecond
	})
	c := startNode(t, "c", func(c *Config) {
		c.Label = "blue"
		c.Join = []string{a.GossipAddr()}
	})
	waitFor(t, 3*time.Second, "same label did not merge", func() bool {
		return servingIs("a", "c")(a) && servingIs("a", "c")(c)
	})
	never(t, 1500*time.Millisecond, "clusters with different labels merged", func() bool {
		_, ab := a.Node("b")
		_, ba := b.Node("a")
		return ab || ba || len(b.Serving()) != 1
	})
}

func TestMembershipKey(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	other := bytes.Repeat([]byte{9}, 32)
	a := startNode(t, "a", func(c *Config) { c.Key = key })
	b := startNode(t, "b", func(c *Config) { c.Key = key; c.Join = []string{a.GossipAddr()} })
	waitFor(t, 3*time.Second, "two nodes with the same key did not merge", allOf([]*Membership{a, b}, servingIs("a", "b")))

	wrong := startNode(t, "wrong", func(c *Config) {
		c.Key = other
		c.Join = []string{a.GossipAddr()}
		c.RejoinInterval = 100 * time.Millisecond
	})
	plain := startNode(t, "plain", func(c *Config) {
		c.Join = []string{a.GossipAddr()}
		c.RejoinInterval = 100 * time.Millisecond
	})
	never(t, 1500*time.Millisecond, "a node with another key, or none, merged", func() bool {
		_, w := a.Node("wrong")
		_, p := a.Node("plain")
		return w || p || len(wrong.Serving()) != 1 || len(plain.Serving()) != 1
	})

	if _, err := New(Config{NodeName: "x", BindAddr: "127.0.0.1:0", Key: []byte("short")}); err == nil {
		t.Error("a 5-byte key was accepted")
	}
}

func TestMembershipDNSSeed(t *testing.T) {
	a := startNode(t, "a", nil)
	_, port, _ := net.SplitHostPort(a.GossipAddr())
	// "localhost" may also resolve to ::1, where nothing listens: each
	// address is tried and one success is a join.
	b := startNode(t, "b", func(c *Config) { c.Join = []string{"localhost:" + port} })
	waitFor(t, 3*time.Second, "a seed given as localhost:port did not join", allOf([]*Membership{a, b}, servingIs("a", "b")))

	// Seeds resolve to addresses, without this node or the alive members.
	if got := b.seedAddrs(); len(got) != 0 {
		t.Errorf("seeds to join once a is a member: %v", got)
	}

	// Every A/AAAA record of a name is a seed to try.
	ips, err := net.DefaultResolver.LookupIPAddr(t.Context(), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	free, _ := testutil.FreeGossipAddr(t)
	_, freePort, _ := net.SplitHostPort(free)
	var want []string
	for _, ip := range ips {
		want = append(want, net.JoinHostPort(ip.IP.String(), freePort))
	}
	x := startNode(t, "x", func(c *Config) {
		c.Join = []string{"localhost:" + freePort, free} // the same address twice
		c.RejoinInterval = -1
	})
	got := x.seedAddrs()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, slices.Compact(want)) {
		t.Errorf("localhost:%s resolves to seeds %v, want %v", freePort, got, want)
	}
	t.Logf("localhost resolves to %d seed address(es): %v", len(got), got)

	// A name with several records, the first of which has nobody: each is
	// tried, and the live one is joined. (No rejoin loop runs on y, so the
	// resolver can be swapped.)
	y := startNode(t, "y", func(c *Config) {
		c.Join = []string{"seeds.roomd.test:" + port}
		c.RejoinInterval = -1
	})
	y.lookupIP = func(_ context.Context, host string) ([]net.IPAddr, error) {
		if host != "seeds.roomd.test" {
			return nil, errors.New("no such host")
		}
		return []net.IPAddr{{IP: net.ParseIP("127.0.0.2")}, {IP: net.ParseIP("127.0.0.1")}, {IP: net.ParseIP("::1")}}, nil
	}
	want = []string{"127.0.0.2:" + port, "127.0.0.1:" + port, "[::1]:" + port}
	if got := y.seedAddrs(); !slices.Equal(got, want) {
		t.Errorf("seeds.roomd.test:%s resolves to seeds %v, want %v", port, got, want)
	}
	y.joinSeeds(false)
	waitFor(t, 3*time.Second, "a seed name with a dead first record did not join", allOf([]*Membership{a, b, y}, servingIs("a", "b", "y")))
}

func TestMembershipSplitHostPort(t *testing.T) {
	for _, tc := range []struct {
		in   string
		def  int
		host string
		port int
		bad  bool
	}{
		{in: "10.0.0.1:7000", def: 7946, host: "10.0.0.1", port: 7000},
		{in: "roomd.default.svc", def: 7946, host: "roomd.default.svc", port: 7946},
		{in: "roomd:7001", def: 7946, host: "roomd", port: 7001},
		{in: "[::1]:7002", def: 7946, host: "::1", port: 7002},
		{in: "[::1]", def: 7946, host: "::1", port: 7946},
		{in: "roomd", def: -1, bad: true},
		{in: "roomd:http", def: 7946, bad: true},
		{in: "roomd:70000", def: 7946, bad: true},
		{in: "", def: 7946, bad: true},
	} {
		host, port, err := splitHostPort(tc.in, tc.def)
		if (err != nil) != tc.bad || (!tc.bad && (host != tc.host || port != tc.port)) {
			t.Errorf("splitHostPort(%q, %d) = %q %d %v", tc.in, tc.def, host, port, err)
		}
	}
}

// TestMembershipRejoinLoop starts b with a seed where nothing listens yet:
// the failed first join is not fatal, and once a comes up at that address
// (a has no seeds of its own) only b's rejoin loop can bring them together.
func TestMembershipRejoinLoop(t *testing.T) {
	addr, release := testutil.FreeGossipAddr(t)
	b := startNode(t, "b", func(c *Config) {
		c.Join = []string{addr}
		c.RejoinInterval = 100 * time.Millisecond
	})
	if got := b.Serving(); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("b alone serves %v", got)
	}
	release()
	a := startNode(t, "a", func(c *Config) { c.BindAddr = addr })
	waitFor(t, 3*time.Second, "the rejoin loop did not merge b into a", allOf([]*Membership{a, b}, servingIs("a", "b")))
}

// TestMembershipNewLife crashes b and starts it again under the same name
// with a newer incarnation: the others see the new life, at its new address
// (as a rescheduled pod gets) and at the same address (a restarted process).
func TestMembershipNewLife(t *testing.T) {
	ms := trio(t, nil)
	a, b, c := ms[0], ms[1], ms[2]
	old := b.Self()

	// Crash, wait for the others to declare it dead, start elsewhere.
	_ = b.Shutdown()
	waitFor(t, 5*time.Second, "b's crash was not detected", allOf([]*Membership{a, c}, func(m *Membership) bool {
		return sees(m, "b", false)
	}))
	b2 := startNode(t, "b", func(cf *Config) {
		cf.Join = []string{a.GossipAddr()}
		cf.RejoinInterval = 100 * time.Millisecond
	})
	if b2.Self().Meta.Incarnation <= old.Meta.Incarnation || b2.Self().Addr == old.Addr {
		t.Fatalf("new life %+v, old %+v", b2.Self(), old)
	}
	waitFor(t, 5*time.Second, "the others do not see b's new life", allOf([]*Membership{a, c}, func(m *Membership) bool {
		n, ok := m.Node("b")
		return ok && n.Alive && n.Meta.Incarnation == b2.Self().Meta.Incarnation && n.Addr == b2.Self().Addr
	}))
	waitFor(t, 3*time.Second, "b's new life does not see the cluster", allOf([]*Membership{a, b2, c}, servingIs("a", "b", "c")))

	// Restart at once on the same address, before anyone noticed the crash.
	addr := b2.GossipAddr()
	_ = b2.Shutdown()
	b3 := startNode(t, "b", func(cf *Config) {
		cf.BindAddr = addr
		cf.Join = []string{c.GossipAddr()}
	})
	waitFor(t, 5*time.Second, "the others do not see b's third life", allOf([]*Membership{a, c}, func(m *Membership) bool {
		n, ok := m.Node("b")
		return ok && n.Alive && n.Meta.Incarnation == b3.Self().Meta.Incarnation
	}))
	waitFor(t, 3*time.Second, "b's third life does not see the cluster", allOf([]*Membership{a, b3, c}, servingIs("a", "b", "c")))
}

func TestMembershipConfigErrors(t *testing.T) {
	long := strings.Repeat("h", 600)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no name", Config{BindAddr: "127.0.0.1:0"}, "NodeName"},
		{"meta too big", Config{NodeName: "x", BindAddr: "127.0.0.1:0", Meta: NodeMeta{HTTPAddr: long}}, "limit of 512"},
		{"bad state", Config{NodeName: "x", BindAddr: "127.0.0.1:0", Meta: NodeMeta{State: "sleeping"}}, "state"},
		{"bad key", Config{NodeName: "x", BindAddr: "127.0.0.1:0", Key: make([]byte, 20)}, "Key"},
		{"host bind", Config{NodeName: "x", BindAddr: "localhost:0"}, "IP address"},
		{"no port", Config{NodeName: "x", BindAddr: "127.0.0.1"}, "BindAddr"},
		{"long label", Config{NodeName: "x", BindAddr: "127.0.0.1:0", Label: strings.Repeat("l", 300)}, "Label"},
		{"unspecified advertise", Config{NodeName: "x", BindAddr: "127.0.0.1:0", AdvertiseAddr: "0.0.0.0:7946"}, "reach"},
	} {
		m, err := New(tc.cfg)
		if err == nil {
			_ = m.Shutdown()
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to mention %q", tc.name, err, tc.want)
		}
	}

	// The largest HTTP address that fits, and a meta that does.
	meta := NodeMeta{HTTPAddr: strings.Repeat("h", 480), Incarnation: time.Now().UnixNano(), State: StateServing}
	b, err := encodeMeta(meta)
	if err != nil {
		t.Fatalf("a 480-byte HTTP address: %v", err)
	}
	got, err := decodeMeta(b)
	if err != nil || got != meta {
		t.Errorf("meta round trip: %+v %v", got, err)
	}
	t.Logf("meta with a 480-byte HTTP address: %d bytes encoded; a typical one: %d", len(b),
		len(mustEncodeMeta(t, NodeMeta{HTTPAddr: "10.12.34.56:8080", Incarnation: time.Now().UnixNano(), State: StateServing})))
}

func mustEncodeMeta(t *testing.T, meta NodeMeta) []byte {
	t.Helper()
	b, err := encodeMeta(meta)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMembershipAdvertise(t *testing.T) {
	// A host without a port advertises the bound port.
	m := startNode(t, "a", func(c *Config) { c.AdvertiseAddr = "127.0.0.1" })
	if m.Self().Addr != m.GossipAddr() {
		t.Errorf("advertised %s, bound %s", m.Self().Addr, m.GossipAddr())
	}

	// An unspecified bind host advertises a real address, or fails clearly.
	priv, _ := sockaddr.GetPrivateIP()
	pub, _ := sockaddr.GetPublicIP()
	u, err := New(Config{NodeName: "u", BindAddr: "0.0.0.0:0", Fast: true})
	if priv == "" && pub == "" {
		if err == nil || !strings.Contains(err.Error(), "AdvertiseAddr") {
			t.Errorf("no address to advertise: err = %v", err)
		}
		if u != nil {
			_ = u.Shutdown()
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = u.Shutdown() }()
	host, _, _ := net.SplitHostPort(u.Self().Addr)
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		t.Errorf("bound to 0.0.0.0, advertised %s", u.Self().Addr)
	}
}

func TestMembershipShutdown(t *testing.T) {
	a := startNode(t, "a", nil)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := a.Shutdown(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := a.Shutdown(); err != nil {
		t.Errorf("Shutdown again: %v", err)
	}
	if err := a.Leave(time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("Leave after Shutdown = %v", err)
	}
	if err := a.SetState(StateLeaving); !errors.Is(err, ErrClosed) {
		t.Errorf("SetState after Shutdown = %v", err)
	}
	if a.Self().Alive {
		t.Error("Self() is alive after Shutdown")
	}
}

func TestMembershipLogs(t *testing.T) {
	var buf testutil.SyncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a := startNode(t, "a", func(c *Config) {
		c.Logger = logger
		free, _ := testutil.FreeGossipAddr(t)
		c.Join = []string{free} // nobody there: a warning, not an error
	})
	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "level=WARN msg=\"membership: no seed reachable; retrying\"") {
		t.Errorf("no warning for the failed first join in:\n%s", out)
	}
	if !strings.Contains(out, "level=DEBUG msg=\"memberlist: ") || !strings.Contains(out, keyLevel+"=") {
		t.Errorf("memberlist's lines are not at debug level in:\n%s", out)
	}
}

// Two members that declared each other dead reconnect once the network
// heals, although their only seed is gone: each tries the members that
// failed, as it tries its seeds. (Declared dead, they neither gossip, probe
// nor sync with each other; without the reconnect they stayed apart.)
func TestMembershipReconnectsFailedMembers(t *testing.T) {
	a := startNode(t, "a", nil)
	faults := map[string]*Faults{"b": NewFaults(), "c": NewFaults()}
	ms := map[string]*Membership{}
	for _, name := range []string{"b", "c"} {
		ms[name] = startNode(t, name, func(c *Config) {
			c.Join = []string{a.GossipAddr()}
			c.RejoinInterval = 200 * time.Millisecond
			c.Faults = faults[name]
		})
	}
	b, c := ms["b"], ms["c"]
	waitFor(t, 5*time.Second, "three nodes do not see each other serving", allOf([]*Membership{a, b, c}, servingIs("a", "b", "c")))
	if err := a.Shutdown(); err != nil { // the seed fails for good
		t.Fatal(err)
	}
	faults["b"].Cut("c", c.GossipAddr())
	faults["c"].Cut("b", b.GossipAddr())
	waitFor(t, 10*time.Second, "b and c do not declare each other dead", func() bool {
		return sees(b, "c", false) && sees(c, "b", false)
	})
	// memberlist still gossips to a dead member for GossipToTheDeadTime
	// (3 s with Fast); past it, nothing goes between them.
	dead := time.Now()
	waitFor(t, 10*time.Second, "memberlist's time to gossip to the dead does not end", func() bool {
		return time.Since(dead) > 4*time.Second
	})
	faults["b"].Heal()
	faults["c"].Heal()
	waitFor(t, 10*time.Second, "b and c do not reconnect", func() bool {
		return sees(b, "c", true) && sees(c, "b", true)
	})
}
