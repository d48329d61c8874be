package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roomd/roomd/cluster/membership"
	"github.com/roomd/roomd/cluster/placement"
	"github.com/roomd/roomd/hooks"
	"github.com/roomd/roomd/room"
)

// Config configures a Cluster. Every zero value means the default given.
type Config struct {
	// Rooms is this node's room engine. Required.
	Rooms *room.Manager
	// Node is this node's unique name. Required.
	Node string
	// HTTPAddr is the host:port at which peers reach this node's HTTP
	// server (for peer links). Required when Gossip is set.
	HTTPAddr string
	// Gossip, when set, makes this node a member of a cluster through
	// memberlist. Nil means a cluster of one.
	Gossip *membership.Config
	// Secret authenticates peer links (a challenge and response that never
	// sends it, linkauth.go) and, unless Gossip.Key is set, keys gossip
	// (GossipKey); required when Gossip is set. Every node of a cluster has
	// the same. Only members that proved it on a link are placed.
	Secret []byte
	// LinkTLS, when set, makes peer links dial wss:// with this config.
	LinkTLS *tls.Config
	// Expect is how many serving members this node waits to see before it
	// bootstraps a new cluster with them (as Consul's bootstrap_expect):
	// until then, or until it finds an existing cluster to join, it owns no
	// room and Ready says so (formation.go). Every node started together to
	// form a cluster has the same. Zero means none: a node with seeds
	// (Gossip.Join) then only joins an existing cluster, and one without
	// is a cluster of its own at once. It needs Gossip.
	Expect int
	// Partitions is the number of partitions rooms hash into. Zero means
	// placement.DefaultPartitions. Every node of a cluster must use the same.
	Partitions int
	// Replicas is how many members replicate each partition (a consensus
	// group; fewer while the cluster is smaller). Zero means 3.
	Replicas int
	// Timing is the raft clock. Zero fields take Timing's defaults.
	Timing Timing
	// LinkQueueMaxBytes bounds a peer link's outbound queue; a link that
	// falls further behind is cut (and its peers resync). Zero means 64 MiB.
	LinkQueueMaxBytes int
	// LinkMaxMessage bounds one inbound message on a peer link (a batch of
	// frames; a partition's raft snapshot travels in one); a peer that sends
	// a larger one is cut off, and this node sends none larger. Zero means
	// DefaultLinkMaxMessage.
	LinkMaxMessage int
	// LinkWriteTimeout bounds one write on a peer link. Zero means 10 s.
	LinkWriteTimeout time.Duration
	// LinkDialTimeout bounds dialing a peer. Zero means 5 s.
	LinkDialTimeout time.Duration
	// RetryTimeout is how long an op keeps retrying a room whose owner is
	// moving or unreachable before it fails with unavailable. Zero means 10 s.
	RetryTimeout time.Duration
	// Faults, when set, cuts this node off from chosen peers, gossip and
	// peer links both, or freezes its view of the membership (tests of
	// network partitions and split views: membership.Faults). Nil in
	// production.
	Faults *membership.Faults
	// Hooks receives the events of the published hook, as the rooms' owner
	// commits messages (hooks.go). Nil means none.
	Hooks *hooks.Hooks
	// Logger receives the cluster's logs. Nil means slog.Default().
	Logger *slog.Logger
	// Metrics receives measurements. Nil means none are kept.
	Metrics Metrics
}

// DefaultLinkMaxMessage is Config.LinkMaxMessage's default: 512 MiB, twice
// a node's default state budget (rooms.max_state_bytes, 256 MiB), which
// bounds the state a partition's snapshot carries, leaving as much again
// for its rooms' history.
const DefaultLinkMaxMessage = 512 << 20

// Cluster is the Router of a node: it owns the rooms of the partitions
// placement gives it, and carries every other room's ops to its owner.
type Cluster struct {
	cfg   Config
	log   *slog.Logger
	self  string
	rooms *room.Manager
	ml    *membership.Membership // nil for a cluster of one
	edge  *edge
	repl  *replication
	parts []sync.RWMutex // per partition: ops that checked this node serves it read-lock; losing it write-locks

	mu      sync.Mutex       // a leaf: never held while calling out (docs/LOCKS.md)
	table   *placement.Table // HRW over the serving members: each partition's target replicas
	alive   map[string]bool  // nodes alive at the last refresh
	links   map[string]*link // by peer name
	linkCh  chan struct{}    // closed (and replaced) whenever links change
	dialing map[string]bool
	closed  bool
	orphans map[string]orphaned  // by peer: members whose link dropped, in grace
	lost    map[string]time.Time // by peer: when its link last failed
	form    formState            // how this node came to own rooms (formation.go)
	formed  atomic.Bool          // form.formed, read without c.mu
	// verified holds, by peer name, the incarnation in which the peer last
	// proved it knows the secret on a link handshake, and when
	// (linkauth.go).
	verified map[string]verification

	incarnation int64        // this node's life, as in its metadata
	auth        *linkAuth    // nil for a cluster of one
	challenger  *http.Client // fetches a peer's link challenge

	// onFormed, when set before the refresh loop starts (in New), is
	// called once, on the refresh goroutine, when this node has formed.
	onFormed func()

	refreshCh chan struct{}
	stop      chan struct{}
	hw        *hookWork // the hooks' work (hooks.go); nil without Config.Hooks
	wg        sync.WaitGroup
	closeOnce sync.Once
}

var _ Router = (*Cluster)(nil)

// New builds the cluster layer of a node and, with Gossip set, joins the
// cluster.
func New(cfg Config) (*Cluster, error) {
	if cfg.Rooms == nil || cfg.Node == "" {
		return nil, errors.New("cluster: Rooms and Node are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = placement.DefaultPartitions
	}
	if cfg.LinkQueueMaxBytes <= 0 {
		cfg.LinkQueueMaxBytes = 64 << 20
	}
	if cfg.LinkMaxMessage <= 0 {
		cfg.LinkMaxMessage = DefaultLinkMaxMessage
	}
	if cfg.LinkWriteTimeout <= 0 {
		cfg.LinkWriteTimeout = 10 * time.Second
	}
	if cfg.LinkDialTimeout <= 0 {
		cfg.LinkDialTimeout = 5 * time.Second
	}
	if cfg.RetryTimeout <= 0 {
		cfg.RetryTimeout = 10 * time.Second
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 3
	}
	if cfg.Gossip != nil && (len(cfg.Secret) == 0 || cfg.HTTPAddr == "") {
		return nil, errors.New("cluster: a clustered node needs a Secret and its HTTPAddr")
	}
	if cfg.Expect < 0 || cfg.Expect > 0 && cfg.Gossip == nil {
		return nil, errors.New("cluster: Expect is a count of members, for a node with Gossip")
	}
	c := &Cluster{
		cfg: cfg, log: cfg.Logger, self: cfg.Node, rooms: cfg.Rooms,
		parts:     make([]sync.RWMutex, cfg.Partitions),
		alive:     map[string]bool{cfg.Node: true},
		links:     map[string]*link{},
		linkCh:    make(chan struct{}),
		dialing:   map[string]bool{},
		orphans:   map[string]orphaned{},
		lost:      map[string]time.Time{},
		verified:  map[string]verification{},
		refreshCh: make(chan struct{}, 1),
		stop:      make(chan struct{}),
	}
	c.edge = newEdge(c)
	c.form.formedCh = make(chan struct{})
	incarnation := time.Now().UnixNano()
	c.incarnation = incarnation
	c.repl = newReplication(c, incarnation, cfg.Timing)
	cfg.Rooms.Replicate(c.roomIdle)
	c.startHooks()
	c.onFormed = c.bootstrapFormed
	c.table = placement.NewTable([]string{c.self}, cfg.Partitions, cfg.Replicas-1)
	if cfg.Gossip == nil {
		c.formAlone()
	} else {
		// A clustered node owns nothing until it has formed.
		c.table = placement.NewTable(nil, cfg.Partitions, cfg.Replicas-1)
		g := *cfg.Gossip
		g.NodeName = cfg.Node
		g.Meta = membership.NodeMeta{HTTPAddr: cfg.HTTPAddr, Incarnation: incarnation, State: membership.StateServing}
		g.OnChange = c.requestRefresh
		g.Faults = cfg.Faults
		g.Forms = true
		if len(g.Key) == 0 {
			g.Key = GossipKey(cfg.Secret) // one secret secures gossip and links
		}
		c.auth = newLinkAuth(cfg.Secret, cfg.Node)
		c.challenger = &http.Client{
			Transport: &http.Transport{TLSClientConfig: cfg.LinkTLS, DisableKeepAlives: true},
			Timeout:   cfg.LinkDialTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
		if g.Logger == nil {
			g.Logger = cfg.Logger
		}
		ml, err := membership.New(g)
		if err != nil {
			return nil, err
		}
		c.ml = ml
	}
	c.repl.start(2)
	if cfg.Gossip == nil {
		c.bootstrapFormed() // a cluster of one, formed at once
	}
	if c.ml != nil {
		c.wg.Add(1)
		go c.refreshLoop()
		c.requestRefresh()
	}
	return c, nil
}

// Self is this node's name.
func (c *Cluster) Self() string { return c.self }

// Placement is the placement table in force on this node.
func (c *Cluster) Placement() *placement.Table {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.table
}

// Settled reports whether this node has no partition in motion: every
// partition has a leader it knows, each group this node leads has its
// target replicas, and no member here is re-joining a moved room.
func (c *Cluster) Settled() bool {
	return c.unsettled() < 0 && !c.edge.moving()
}

// unsettled returns a partition without a leader this node knows, or one
// it leads that is still moving; -1 when there is none.
func (c *Cluster) unsettled() int {
	c.mu.Lock()
	t := c.table
	c.mu.Unlock()
	for p := range c.cfg.Partitions {
		if c.repl.leaderOf(p) == "" || !c.repl.settled(p, c.targetIDs(t, p)) {
			return p
		}
	}
	return -1
}

// GossipAddr is the address the node gossips on ("" for a cluster of one).
func (c *Cluster) GossipAddr() string {
	if c.ml == nil {
		return ""
	}
	return c.ml.GossipAddr()
}

// Drain hands every room of this node to the others: the node marks itself
// leaving, every group it leads hands its leadership over and moves its
// replica away, and Drain waits until this node leads none (or ctx). A
// cluster of one has nothing to hand over.
func (c *Cluster) Drain(ctx context.Context) error {
	if c.ml == nil {
		return nil
	}
	others := 0
	for _, name := range c.ml.Serving() {
		if name != c.self {
			others++
		}
	}
	if others == 0 {
		return nil // no node to hand the rooms to: they end with this one
	}
	if err := c.ml.SetState(membership.StateLeaving); err != nil {
		return err
	}
	c.requestRefresh()
	for {
		if c.repl.led() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Shutdown leaves the memberlist, closes every link and waits for the
// goroutines the cluster started. Safe to call twice.
func (c *Cluster) Shutdown(ctx context.Context) error {
	var err error
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		links := make([]*link, 0, len(c.links))
		for _, l := range c.links {
			links = append(links, l)
		}
		c.mu.Unlock()
		close(c.stop)
		c.repl.close()
		if c.ml != nil {
			_ = c.ml.Leave(time.Second)
			err = c.ml.Shutdown()
		}
		for _, l := range links {
			l.close()
		}
		done := make(chan struct{})
		go func() { c.wg.Wait(); c.edge.wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = ctx.Err()
		}
	})
	return err
}
