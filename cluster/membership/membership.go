package membership

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-sockaddr"
	"github.com/hashicorp/memberlist"
	"github.com/vmihailenco/msgpack/v5"
)

// NodeState is what a node says it is doing, in its metadata.
type NodeState string

const (
	// StateServing: the node takes part in placement.
	StateServing NodeState = "serving"
	// StateLeaving: the node is shutting down gracefully; it is out of
	// placement at once, while it hands its rooms off.
	StateLeaving NodeState = "leaving"
)

// NodeMeta is a node's metadata, gossiped with its liveness. It is encoded
// with msgpack and must fit memberlist's limit of 512 bytes
// (memberlist.MetaMaxSize), which leaves room for an HTTPAddr of about 440.
type NodeMeta struct {
	// HTTPAddr is the host:port at which peers reach the node's HTTP server
	// (peer links).
	HTTPAddr string `msgpack:"h,omitempty"`
	// Incarnation tells one life of a node from the next: the process start
	// time in unix nanoseconds. A node seen again under the same name with a
	// greater incarnation was restarted, and whatever peers held for its
	// previous life (links, presence) is gone.
	Incarnation int64 `msgpack:"i,omitempty"`
	// State is serving or leaving.
	State NodeState `msgpack:"s,omitempty"`
	// ClusterID is the identity of the cluster the node has formed or
	// joined (cluster/formation.go): empty until then. Two nodes with different
	// non-empty IDs never merge.
	ClusterID string `msgpack:"c,omitempty"`
}

// Node is one member of the cluster as this node sees it.
type Node struct {
	Name string
	// Addr is the node's gossip address, host:port.
	Addr string
	Meta NodeMeta
	// Alive is false for a node that failed or left and is still known.
	// Suspected nodes are still alive.
	Alive bool
}

// ErrClosed is returned by operations on a Membership that has
// left the cluster or been shut down.
var ErrClosed = errors.New("cluster: membership has left or is shut down")

// Config configures a Membership. Every zero value means the
// default given.
type Config struct {
	// NodeName is this node's name, unique in the cluster. Required.
	NodeName string
	// BindAddr is the host:port gossip listens on (TCP and UDP). The host
	// must be an IP address; an empty host means every interface. Port 0
	// picks a free port (tests); GossipAddr tells which. Zero means
	// "0.0.0.0:7946".
	BindAddr string
	// AdvertiseAddr is the host:port other nodes reach this one on; a host
	// name is resolved once, at start. A missing or zero port means the
	// bound port. Zero means BindAddr; when that host is unspecified
	// (0.0.0.0, ::), a private address of this machine, else a public one,
	// and New fails if it has none.
	AdvertiseAddr string
	// Join lists the seeds: host:port, or a DNS name, with or without a
	// port (default: the bind port, else 7946), every A/AAAA record of which
	// is tried. Empty means this node starts a cluster of its own.
	Join []string
	// RejoinInterval is how often the seeds that are not alive members are
	// joined again, so that nodes find each other after a partition or a
	// failed first join (memberlist forgets peers it declared dead). Until
	// the node has joined a cluster (see Forms), the seeds are tried with
	// backoff instead: after 200 ms, then twice as long each time, up to
	// RejoinInterval. Zero means 30 s; negative disables retries.
	RejoinInterval time.Duration
	// Label is memberlist's cluster label: nodes with different labels
	// never merge. Zero means no label (which only merges with no label).
	Label string
	// Key encrypts and authenticates gossip (AES-GCM): 16, 24 or 32 bytes,
	// the same on every node; a node without it (or with another) cannot
	// join. Nil means none: gossip is open to anyone, and a Warn says so.
	// A cluster.Cluster sets it from its secret (cluster.GossipKey) unless one is given.
	Key []byte
	// Meta is this node's metadata at start. A zero Incarnation means the
	// current time; a zero State means serving.
	Meta NodeMeta
	// Forms says that this node will carry a cluster ID once it has formed
	// (SetClusterID): until then, the seeds are retried with backoff even
	// when other members are alive. False: another alive member is enough.
	Forms bool
	// Fast selects test timings instead of memberlist's LAN defaults: probe
	// every 200 ms with a 100 ms timeout, suspicion multiplier 3 (a suspect
	// is declared dead after 600 ms once another member confirms it, 3.6 s
	// at most, in clusters under 10 nodes), gossip every 50 ms, push/pull
	// every 1 s, stream timeout 1 s; dead nodes are forgotten after 3 s and
	// their names reclaimable after 0.5 s. A crashed node in a cluster of
	// three on loopback is declared dead by both others in about a second
	// (TestMembershipCrashDetected), against roughly 4 to 24 s with the
	// defaults. (A 50 ms timeout and 200 ms of suspicion declared live nodes
	// dead whenever a loaded 2-core machine stalled a process for a few
	// hundred milliseconds, and every false death moved replicas away and
	// back: a cluster under test never settled.)
	Fast bool
	// Logger receives this package's membership logs and memberlist's own
	// lines, the latter at debug level. Nil means no logs.
	Logger *slog.Logger
	// Faults, when set, cuts the node's gossip off from chosen peers (tests
	// of partitions, fault.go). Nil in production.
	Faults *Faults
	// OnChange is called whenever the set of members, their liveness or
	// their metadata changes. Calls are made from a goroutine of the
	// Membership, one at a time, never under a lock of it or of
	// memberlist, and changes that happen during a call are coalesced into
	// the next one. OnChange must not call Shutdown. Nil means none.
	OnChange func()
}

// Log keys of this file.
const (
	keyNode   = "node"
	keyAddr   = "addr"
	keySeeds  = "seeds"
	keyErr    = "err"
	keyJoined = "joined"
	keyLevel  = "memberlist_level"
	keyFirst  = "retry_first"
	keyUpTo   = "retry_up_to"
)

const (
	defaultBind   = "0.0.0.0:7946"
	defaultPort   = 7946
	defaultRejoin = 30 * time.Second
	// updateTimeout bounds how long SetState waits for its broadcast.
	updateTimeout = 5 * time.Second
	// resolveTimeout bounds resolving one seed name.
	resolveTimeout = 5 * time.Second
)

// Membership is this node's view of the cluster, kept by hashicorp/memberlist:
// who is there, alive, and serving. It does failure detection and carries
// node metadata only; room traffic never goes through it.
//
// Lock order: memberlist calls the delegates with its own node lock held,
// and they take m.mu; so m.mu is never held while calling into memberlist.
// opMu serializes the operations that change this node's membership
// (SetState, Leave, Shutdown) and is taken before m.mu. docs/LOCKS.md has
// the whole program's order.
type Membership struct {
	cfg        Config
	log        *slog.Logger
	list       *memberlist.Memberlist
	gossipAddr string
	selfAddr   string
	rejoin     time.Duration
	// lookupIP resolves seed names: net.DefaultResolver's, or a test's.
	lookupIP func(ctx context.Context, host string) ([]net.IPAddr, error)

	opMu   sync.Mutex
	left   atomic.Bool
	closed atomic.Bool

	mu        sync.Mutex
	meta      NodeMeta
	metaBytes []byte
	nodes     map[string]*entry
	reapAfter time.Duration     // how long a dead node stays in nodes
	refused   map[string]string // nodes of another cluster: their cluster ID
	usesID    bool              // cfg.Forms
	failed    map[string]failed // members that failed (not left), to reconnect to (rejoin.go)

	changed      chan struct{} // capacity 1: a pending OnChange
	stop         chan struct{}
	wg           sync.WaitGroup
	shutdownOnce sync.Once
	shutdownErr  error
}

type entry struct {
	node  Node
	since time.Time // when it was last seen to change liveness
}

// New starts gossip on cfg.BindAddr and joins the seeds. A first
// join that reaches no seed is not fatal: it is logged and retried with
// backoff (see RejoinInterval). The Membership runs until Shutdown.
func New(cfg Config) (*Membership, error) {
	if cfg.NodeName == "" {
		return nil, errors.New("cluster: membership: NodeName is required")
	}
	switch len(cfg.Key) {
	case 0, 16, 24, 32:
	default:
		return nil, fmt.Errorf("cluster: membership: Key is %d bytes, want 16, 24 or 32", len(cfg.Key))
	}
	if len(cfg.Label) > memberlist.LabelMaxSize {
		return nil, fmt.Errorf("cluster: membership: Label is longer than %d bytes", memberlist.LabelMaxSize)
	}
	meta := cfg.Meta
	if meta.Incarnation == 0 {
		meta.Incarnation = time.Now().UnixNano()
	}
	if meta.State == "" {
		meta.State = StateServing
	}
	if err := validState(meta.State); err != nil {
		return nil, err
	}
	metaBytes, err := encodeMeta(meta)
	if err != nil {
		return nil, err
	}

	bindAddr := cfg.BindAddr
	if bindAddr == "" {
		bindAddr = defaultBind
	}
	bindHost, bindPort, err := splitHostPort(bindAddr, -1)
	if err != nil {
		return nil, fmt.Errorf("cluster: membership: BindAddr %q: %w", cfg.BindAddr, err)
	}
	if bindHost == "" {
		bindHost = "0.0.0.0"
	}
	bindIP := net.ParseIP(bindHost)
	if bindIP == nil {
		return nil, fmt.Errorf("cluster: membership: BindAddr %q: the host must be an IP address", cfg.BindAddr)
	}
	advHost, advPort, err := advertise(cfg.AdvertiseAddr, bindIP, bindPort)
	if err != nil {
		return nil, err
	}

	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Membership{
		cfg:       cfg,
		log:       logger,
		meta:      meta,
		metaBytes: metaBytes,
		nodes:     map[string]*entry{},
		failed:    map[string]failed{},
		changed:   make(chan struct{}, 1),
		stop:      make(chan struct{}),
		rejoin:    cfg.RejoinInterval,
		lookupIP:  net.DefaultResolver.LookupIPAddr,
		usesID:    cfg.Forms,
	}
	if m.rejoin == 0 {
		m.rejoin = defaultRejoin
	}

	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeName
	mc.BindAddr = bindIP.String()
	mc.BindPort = bindPort
	mc.AdvertiseAddr = advHost
	mc.AdvertisePort = advPort
	mc.Label = cfg.Label
	if len(cfg.Key) > 0 {
		// memberlist then refuses every message not sealed with the key
		// (GossipVerifyIncoming), in both directions.
		mc.SecretKey = slices.Clone(cfg.Key)
	} else {
		logger.Warn("gossip is neither encrypted nor authenticated: no key; anyone who reaches the gossip port can join")
	}
	mc.Delegate = delegate{m}
	mc.Events = delegate{m}
	mc.Alive = delegate{m}
	mc.Merge = delegate{m}
	mc.Logger = log.New(logWriter{logger}, "", 0)
	// A node restarted elsewhere (a new address under the same name, as a
	// rescheduled pod gets) may take its name back once its previous life
	// has been dead this long; memberlist would otherwise refuse it until it
	// reaps the dead node (GossipToTheDeadTime).
	mc.DeadNodeReclaimTime = 10 * time.Second
	if cfg.Fast {
		mc.ProbeInterval = 200 * time.Millisecond
		mc.ProbeTimeout = 100 * time.Millisecond
		mc.SuspicionMult = 3
		mc.GossipInterval = 50 * time.Millisecond
		mc.PushPullInterval = time.Second
		mc.TCPTimeout = time.Second
		mc.GossipToTheDeadTime = 3 * time.Second
		mc.DeadNodeReclaimTime = 500 * time.Millisecond
	}
	// A dead node stays listed a little longer than memberlist keeps it.
	m.reapAfter = 2 * mc.GossipToTheDeadTime

	var ft *faultTransport
	if cfg.Faults != nil {
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{mc.BindAddr}, BindPort: mc.BindPort, Logger: mc.Logger})
		if err != nil {
			return nil, fmt.Errorf("cluster: membership: %w", err)
		}
		mc.BindPort = nt.GetAutoBindPort()
		if mc.AdvertisePort == 0 {
			mc.AdvertisePort = mc.BindPort
		}
		ft = newFaultTransport(nt, cfg.Faults)
		mc.Transport = ft
	}
	list, err := memberlist.Create(mc)
	if err != nil {
		if ft != nil {
			_ = ft.Shutdown()
		}
		return nil, fmt.Errorf("cluster: membership: %w", err)
	}
	m.list = list
	// memberlist wrote the port it bound back into its config.
	m.gossipAddr = net.JoinHostPort(bindIP.String(), strconv.Itoa(mc.BindPort))
	m.selfAddr = list.LocalNode().Address()

	m.wg.Add(1)
	go m.notifyLoop()

	m.joinSeeds(true)
	if m.rejoin > 0 {
		m.wg.Add(1)
		go m.rejoinLoop()
	}
	return m, nil
}

// Self returns this node as the cluster sees it, with its current metadata.
func (m *Membership) Self() Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := Node{Name: m.cfg.NodeName, Addr: m.selfAddr}
	if e, ok := m.nodes[n.Name]; ok {
		n = e.node
	}
	n.Meta = m.meta
	n.Alive = n.Alive && !m.left.Load() && !m.closed.Load()
	return n
}

// Nodes returns every known node, this one included, sorted by name. Failed
// and departed nodes are listed with Alive false for a while (twice
// memberlist's GossipToTheDeadTime), then forgotten.
func (m *Membership) Nodes() []Node {
	self := m.Self()
	m.mu.Lock()
	out := make([]Node, 0, len(m.nodes))
	for name, e := range m.nodes {
		if name == self.Name {
			out = append(out, self)
			continue
		}
		out = append(out, e.node)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Serving returns the sorted names of the alive nodes whose state is
// serving, this one included when it is: the input of placement.
func (m *Membership) Serving() []string {
	var out []string
	for _, n := range m.Nodes() {
		if n.Alive && n.Meta.State == StateServing {
			out = append(out, n.Name)
		}
	}
	return out
}

// Node returns the node named name, if it is known.
func (m *Membership) Node(name string) (Node, bool) {
	if name == m.cfg.NodeName {
		return m.Self(), true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.nodes[name]
	if !ok {
		return Node{}, false
	}
	return e.node, true
}

// GossipAddr returns the address gossip is bound to, with the real port
// when BindAddr asked for port 0.
func (m *Membership) GossipAddr() string { return m.gossipAddr }

// SetState changes this node's state and broadcasts its metadata, waiting
// up to 5 s for the broadcast to go out. When that times out the new state
// still spreads by gossip, and the error says so.
func (m *Membership) SetState(s NodeState) error {
	if err := validState(s); err != nil {
		return err
	}
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if err := m.setMeta(func(meta *NodeMeta) { meta.State = s }); err != nil {
		return err
	}
	if err := m.list.UpdateNode(updateTimeout); err != nil {
		return fmt.Errorf("cluster: membership: broadcast state %s: %w", s, err)
	}
	return nil
}

// setMeta changes this node's metadata, which the next broadcast
// carries. opMu is held on entry.
func (m *Membership) setMeta(change func(*NodeMeta)) error {
	if m.left.Load() || m.closed.Load() {
		return ErrClosed
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	meta := m.meta
	change(&meta)
	b, err := encodeMeta(meta)
	if err != nil {
		return err
	}
	m.meta, m.metaBytes = meta, b
	return nil
}

// Leave tells the cluster this node is leaving, waiting up to timeout for
// the broadcast to go out (zero: without a limit); the others see it gone
// at once rather than after failure detection. Gossip keeps running until
// Shutdown. Leaving twice is a no-op.
func (m *Membership) Leave(timeout time.Duration) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if m.closed.Load() {
		return ErrClosed
	}
	if m.left.Load() {
		return nil
	}
	m.left.Store(true) // memberlist marks itself left before it waits
	if err := m.list.Leave(timeout); err != nil {
		return fmt.Errorf("cluster: membership: leave: %w", err)
	}
	return nil
}

// Shutdown stops gossip, the rejoin loop and the OnChange goroutine, and
// waits for them; a join in flight may hold it up to memberlist's stream
// timeout (10 s, 1 s with Fast). Without a Leave first, the others detect
// this node as failed. It is safe to call more than once.
func (m *Membership) Shutdown() error {
	m.shutdownOnce.Do(func() {
		m.opMu.Lock()
		m.closed.Store(true)
		m.opMu.Unlock()
		close(m.stop)
		if err := m.list.Shutdown(); err != nil {
			m.shutdownErr = fmt.Errorf("cluster: membership: shutdown: %w", err)
		}
		m.wg.Wait()
	})
	return m.shutdownErr
}

// notifyLoop calls OnChange once per burst of changes, until stop.
func (m *Membership) notifyLoop() {
	defer m.wg.Done()
	for {
		select {
		case <-m.stop:
			return
		case <-m.changed:
			if m.cfg.OnChange != nil {
				m.cfg.OnChange()
			}
		}
	}
}

// rejoinLoop joins the seeds that are not alive members, with backoff
// until this node has joined a cluster and every RejoinInterval once it
// has, until stop.
func (m *Membership) rejoinLoop() {
	defer m.wg.Done()
	runRejoin(m.stop, m.rejoin, false, func() bool {
		if !m.left.Load() {
			m.joinSeeds(false)
		}
		return m.hasJoined()
	})
}

// hasJoined reports whether this node has joined a cluster: it has another
// alive member, and it carries a cluster ID (it has formed), or it is used
// without one (no cluster layer sets it, and then company is enough).
func (m *Membership) hasJoined() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.meta.ClusterID == "" && m.usesID {
		return false
	}
	for name, e := range m.nodes {
		if name != m.cfg.NodeName && e.node.Alive {
			return true
		}
	}
	return false
}

// joinSeeds resolves the seeds and joins those that are not alive members,
// and, after the first try, one member that failed (reconnectTarget).
func (m *Membership) joinSeeds(first bool) {
	var addrs []string
	if len(m.cfg.Join) > 0 {
		addrs = m.seedAddrs()
	}
	if !first {
		if a := m.reconnectTarget(time.Now()); a != "" && !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		if first && len(m.cfg.Join) > 0 {
			m.log.Warn("membership: no seed resolved; retrying", slog.Any(keySeeds, m.cfg.Join))
		}
		return
	}
	n, err := m.list.Join(addrs)
	switch {
	case err != nil && first:
		m.log.Warn("membership: no seed reachable; retrying", slog.Any(keySeeds, addrs),
			slog.Duration(keyFirst, min(rejoinFirst, m.rejoin)), slog.Duration(keyUpTo, m.rejoin), slog.Any(keyErr, err))
	case err != nil:
		m.log.Debug("membership: rejoin failed", slog.Any(keySeeds, addrs), slog.Any(keyErr, err))
	case first:
		m.log.Info("membership: joined", slog.Int(keyJoined, n), slog.Any(keySeeds, addrs))
	default:
		m.log.Info("membership: rejoined seeds", slog.Int(keyJoined, n), slog.Any(keySeeds, addrs))
	}
}

// seedAddrs resolves the seeds to ip:port addresses, leaving out this
// node and the alive members.
func (m *Membership) seedAddrs() []string {
	defPort := defaultPort
	if _, p, err := splitHostPort(m.cfg.BindAddr, -1); err == nil && p > 0 {
		defPort = p
	}
	skip := map[string]bool{m.selfAddr: true, m.gossipAddr: true}
	m.mu.Lock()
	for _, e := range m.nodes {
		if e.node.Alive {
			skip[e.node.Addr] = true
		}
	}
	m.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	go func() { // a Shutdown cuts resolution short
		select {
		case <-m.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	var out []string
	for _, seed := range m.cfg.Join {
		host, port, err := splitHostPort(seed, defPort)
		if err != nil {
			m.log.Warn("membership: bad seed", slog.String(keyAddr, seed), slog.Any(keyErr, err))
			continue
		}
		var ips []net.IP
		if ip := net.ParseIP(host); ip != nil {
			ips = []net.IP{ip}
		} else {
			as, err := m.lookupIP(ctx, host)
			if err != nil {
				m.log.Debug("membership: seed does not resolve", slog.String(keyAddr, seed), slog.Any(keyErr, err))
				continue
			}
			for _, a := range as {
				ips = append(ips, a.IP)
			}
		}
		for _, ip := range ips {
			if ip4 := ip.To4(); ip4 != nil {
				ip = ip4
			}
			a := net.JoinHostPort(ip.String(), strconv.Itoa(port))
			if !skip[a] {
				skip[a] = true
				out = append(out, a)
			}
		}
	}
	return out
}

// record records what memberlist says of n and asks for an OnChange. It runs
// under memberlist's node lock.
func (m *Membership) record(n *memberlist.Node, alive bool) {
	meta, err := decodeMeta(n.Meta)
	if err != nil {
		m.log.Debug("membership: undecodable node meta", slog.String(keyNode, n.Name), slog.Any(keyErr, err))
	}
	now := time.Now()
	m.mu.Lock()
	e, ok := m.nodes[n.Name]
	if !ok {
		e = &entry{}
		m.nodes[n.Name] = e
	}
	if !ok || e.node.Alive != alive {
		e.since = now
	}
	e.node = Node{Name: n.Name, Addr: n.Address(), Meta: meta, Alive: alive}
	m.noteFailedLocked(n.Name, n.Address(), alive, meta.State == StateLeaving, now)
	for name, d := range m.nodes {
		if !d.node.Alive && now.Sub(d.since) > m.reapAfter {
			delete(m.nodes, name)
		}
	}
	m.mu.Unlock()
	m.notifyChange()
}

// notifyChange asks for an OnChange.
func (m *Membership) notifyChange() {
	select {
	case m.changed <- struct{}{}:
	default: // one is pending; it will see this change too
	}
}

// delegate is memberlist's view of a Membership: its Delegate (metadata)
// and EventDelegate. It is a separate type so that these methods stay off
// Membership's API.
type delegate struct{ m *Membership }

var (
	_ memberlist.Delegate      = delegate{}
	_ memberlist.EventDelegate = delegate{}
)

func (d delegate) NodeMeta(limit int) []byte {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	if len(d.m.metaBytes) > limit { // cannot happen: checked when set
		return nil
	}
	return d.m.metaBytes
}

func (delegate) NotifyMsg([]byte)                           {}
func (delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (delegate) LocalState(join bool) []byte                { return nil }
func (delegate) MergeRemoteState(buf []byte, join bool)     {}

func (d delegate) NotifyJoin(n *memberlist.Node)   { d.m.record(n, true) }
func (d delegate) NotifyUpdate(n *memberlist.Node) { d.m.record(n, true) }
func (d delegate) NotifyLeave(n *memberlist.Node)  { d.m.record(n, false) }

func validState(s NodeState) error {
	switch s {
	case StateServing, StateLeaving:
		return nil
	}
	return fmt.Errorf("cluster: membership: unknown node state %q", s)
}

func encodeMeta(meta NodeMeta) ([]byte, error) {
	b, err := msgpack.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("cluster: membership: encode meta: %w", err)
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("cluster: membership: node meta is %d bytes encoded, over memberlist's limit of %d", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

func decodeMeta(b []byte) (NodeMeta, error) {
	var meta NodeMeta
	if len(b) == 0 {
		return meta, errors.New("no meta")
	}
	err := msgpack.Unmarshal(b, &meta)
	return meta, err
}

// splitHostPort splits host:port; a missing port is defPort, or an error
// when defPort is negative.
func splitHostPort(addr string, defPort int) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if defPort < 0 {
			return "", 0, err
		}
		// No port: the whole of it is the host (brackets allowed for IPv6).
		host = strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
		if host == "" {
			return "", 0, fmt.Errorf("empty address")
		}
		return host, defPort, nil
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("bad port %q", port)
	}
	return host, int(p), nil
}

// advertise decides the address and port to advertise. A port of 0 means
// the bound port (memberlist fills it in when bindPort is 0 too).
func advertise(adv string, bindIP net.IP, bindPort int) (string, int, error) {
	if adv != "" {
		host, port, err := splitHostPort(adv, 0)
		if err != nil {
			return "", 0, fmt.Errorf("cluster: membership: AdvertiseAddr %q: %w", adv, err)
		}
		if port == 0 {
			port = bindPort
		}
		ip := net.ParseIP(host)
		if ip == nil {
			ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
			defer cancel()
			ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
			if err != nil || len(ips) == 0 {
				return "", 0, fmt.Errorf("cluster: membership: AdvertiseAddr %q does not resolve: %v", adv, err)
			}
			ip = ips[0]
		}
		if ip.IsUnspecified() {
			return "", 0, fmt.Errorf("cluster: membership: AdvertiseAddr %q is not an address others can reach", adv)
		}
		return ip.String(), port, nil
	}
	if !bindIP.IsUnspecified() {
		return bindIP.String(), bindPort, nil
	}
	ip, err := sockaddr.GetPrivateIP()
	if err == nil && ip == "" {
		ip, err = sockaddr.GetPublicIP()
	}
	if err != nil || ip == "" {
		return "", 0, fmt.Errorf("cluster: membership: BindAddr is unspecified and no address of this machine could be found to advertise (%v): set AdvertiseAddr", err)
	}
	return ip, bindPort, nil
}

// logWriter turns memberlist's log lines ("[LEVEL] memberlist: text")
// into debug records.
type logWriter struct{ l *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	ctx := context.Background()
	if !w.l.Enabled(ctx, slog.LevelDebug) {
		return len(p), nil
	}
	line := strings.TrimRight(string(p), "\r\n")
	level := ""
	if strings.HasPrefix(line, "[") {
		if i := strings.IndexByte(line, ']'); i > 0 {
			level, line = line[1:i], strings.TrimSpace(line[i+1:])
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	w.l.LogAttrs(ctx, slog.LevelDebug, "memberlist: "+line, slog.String(keyLevel, level))
	return len(p), nil
}
