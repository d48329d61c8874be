package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/roomd/roomd/protocol"
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
	Gossip *MembershipConfig
	// Secret authenticates peer links; required when Gossip is set. Every
	// node of a cluster has the same.
	Secret []byte
	// LinkTLS, when set, makes peer links dial wss:// with this config.
	LinkTLS *tls.Config
	// Partitions is the number of partitions rooms hash into. Zero means
	// DefaultPartitions. Every node of a cluster must use the same.
	Partitions int
	// LinkQueueMaxBytes bounds a peer link's outbound queue; a link that
	// falls further behind is cut (and its peers resync). Zero means 64 MiB.
	LinkQueueMaxBytes int
	// LinkWriteTimeout bounds one write on a peer link. Zero means 10 s.
	LinkWriteTimeout time.Duration
	// LinkDialTimeout bounds dialing a peer. Zero means 5 s.
	LinkDialTimeout time.Duration
	// RetryTimeout is how long an op keeps retrying a room whose owner is
	// moving or unreachable before it fails with unavailable. Zero means 10 s.
	RetryTimeout time.Duration
	// Logger receives the cluster's logs. Nil means slog.Default().
	Logger *slog.Logger
	// Metrics receives measurements. Nil means none are kept.
	Metrics Metrics
}

// Cluster is the Router of a node: it owns the rooms of the partitions
// placement gives it, and carries every other room's ops to its owner.
type Cluster struct {
	cfg   Config
	log   *slog.Logger
	self  string
	rooms *room.Manager
	ml    *Membership // nil for a cluster of one
	edge  *edge
	parts []sync.RWMutex // per partition: ops read-lock, handoff write-locks

	mu       sync.Mutex
	table    *Table
	alive    map[string]bool  // nodes alive at the last refresh
	pending  map[int]string   // partitions gained from a live node, not yet handed over
	dones    map[int]doneMark // handovers finished by a node before we expected them
	links    map[string]*link // by peer name
	linkCh   chan struct{}    // closed (and replaced) whenever links change
	dialing  map[string]bool
	handoffs int // handoffs in progress
	closed   bool
	paused   bool                // tests: the membership view is frozen
	orphans  map[string]orphaned // by peer: members whose link dropped, in grace

	refreshCh chan struct{}
	stop      chan struct{}
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
		cfg.Partitions = DefaultPartitions
	}
	if cfg.LinkQueueMaxBytes <= 0 {
		cfg.LinkQueueMaxBytes = 64 << 20
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
	if cfg.Gossip != nil && (len(cfg.Secret) == 0 || cfg.HTTPAddr == "") {
		return nil, errors.New("cluster: a clustered node needs a Secret and its HTTPAddr")
	}
	c := &Cluster{
		cfg: cfg, log: cfg.Logger, self: cfg.Node, rooms: cfg.Rooms,
		parts:     make([]sync.RWMutex, cfg.Partitions),
		alive:     map[string]bool{cfg.Node: true},
		pending:   map[int]string{},
		dones:     map[int]doneMark{},
		links:     map[string]*link{},
		linkCh:    make(chan struct{}),
		dialing:   map[string]bool{},
		orphans:   map[string]orphaned{},
		refreshCh: make(chan struct{}, 1),
		stop:      make(chan struct{}),
	}
	c.edge = newEdge(c)
	c.table = NewTable([]string{c.self}, cfg.Partitions, 0)
	if cfg.Gossip != nil {
		// A clustered node owns nothing until it has seen the membership.
		c.table = NewTable(nil, cfg.Partitions, 0)
		g := *cfg.Gossip
		g.NodeName = cfg.Node
		g.Meta = NodeMeta{HTTPAddr: cfg.HTTPAddr, Incarnation: time.Now().UnixNano(), State: StateServing}
		g.OnChange = c.requestRefresh
		if g.Logger == nil {
			g.Logger = cfg.Logger
		}
		ml, err := NewMembership(g)
		if err != nil {
			return nil, err
		}
		c.ml = ml
		c.wg.Add(1)
		go c.refreshLoop()
		c.requestRefresh()
	}
	return c, nil
}

// Self is this node's name.
func (c *Cluster) Self() string { return c.self }

// requestRefresh asks the refresh loop to look at membership again.
func (c *Cluster) requestRefresh() {
	select {
	case c.refreshCh <- struct{}{}:
	default:
	}
}

func (c *Cluster) refreshLoop() {
	defer c.wg.Done()
	tick := time.NewTicker(time.Second) // also retries links and stale pendings
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.refreshCh:
		case <-tick.C:
		}
		c.refresh()
	}
}

// refresh rebuilds the placement table from membership, starts the
// handoffs of partitions this node lost, marks those it gained, reacts to
// nodes that died, and makes sure links to peers are up.
func (c *Cluster) refresh() {
	if c.ml == nil {
		return
	}
	serving := c.ml.Serving()
	nodes := c.ml.Nodes()
	alive := map[string]bool{}
	for _, n := range nodes {
		if n.Alive {
			alive[n.Name] = true
		}
	}
	next := NewTable(serving, c.cfg.Partitions, 0)

	c.mu.Lock()
	if c.closed || c.paused {
		c.mu.Unlock()
		return
	}
	prev := c.table
	if len(prev.Members()) == 0 {
		// This node's first view: what it gains, it gains from the owners
		// the others had without it.
		var others []string
		for _, name := range serving {
			if name != c.self {
				others = append(others, name)
			}
		}
		prev = NewTable(others, c.cfg.Partitions, 0)
	}
	var died []string
	for name := range c.alive {
		if !alive[name] {
			died = append(died, name)
		}
	}
	if len(died) > 0 {
		c.notifyLinksLocked() // waiters for a link to a dead node give up
	}
	c.alive = alive
	var lost []Move
	if next.Version() != prev.Version() {
		for _, mv := range Moves(prev, next) {
			switch {
			case mv.To == c.self && mv.From != "" && alive[mv.From]:
				if d, ok := c.dones[mv.Partition]; ok && d.from == mv.From && time.Since(d.at) < doneTTL {
					delete(c.dones, mv.Partition)
				} else {
					c.pending[mv.Partition] = mv.From
				}
			case mv.From == c.self && mv.To != "":
				delete(c.pending, mv.Partition)
				lost = append(lost, mv)
			}
		}
		c.table = next
		c.log.Info("placement changed", slog.Int("members", len(serving)), slog.Int("partitions_lost", len(lost)))
	}
	// A partition waiting on a node that died will never be handed over.
	for p, from := range c.pending {
		if !alive[from] || next.Owner(p) != c.self {
			delete(c.pending, p)
		}
	}
	c.handoffs += len(lost)
	for p, d := range c.dones {
		if time.Since(d.at) >= doneTTL {
			delete(c.dones, p)
		}
	}
	c.mu.Unlock()

	for _, name := range died {
		c.log.Warn("node is gone", slog.String("node", name))
		c.leaveOrphans(name)
		if l := c.linkOf(name); l != nil {
			l.close()
		}
		c.edge.ownerLost(name)
	}
	for _, mv := range lost {
		c.wg.Add(1)
		go c.handOff(mv)
	}
	c.ensureLinks(nodes)
}

// orphaned are the members a peer had here when its link dropped: they are
// in their presence grace, and leave at once if the peer is declared dead.
type orphaned struct {
	subs map[subKey]*linkSub
	at   time.Time
}

// orphanTTL bounds how long orphans are remembered (past any grace).
const orphanTTL = time.Minute

func (c *Cluster) orphan(peer string, subs map[subKey]*linkSub) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.orphans[peer]
	if o.subs == nil || time.Since(o.at) > orphanTTL {
		o.subs = map[subKey]*linkSub{}
	}
	for k, s := range subs {
		o.subs[k] = s
	}
	o.at = time.Now()
	c.orphans[peer] = o
}

// leaveOrphans makes a dead peer's members leave now. A member that was
// taken over meanwhile (it re-joined through another node) is not touched.
func (c *Cluster) leaveOrphans(peer string) {
	c.mu.Lock()
	o := c.orphans[peer]
	delete(c.orphans, peer)
	c.mu.Unlock()
	if time.Since(o.at) > orphanTTL {
		return
	}
	for k := range o.subs {
		c.rooms.EndGrace(k.room, k.conn)
	}
}

// doneMark remembers a handover that finished before this node saw the
// move; it counts for doneTTL.
type doneMark struct {
	from string
	at   time.Time
}

const doneTTL = 30 * time.Second

// Placement is the placement table in force on this node.
func (c *Cluster) Placement() *Table {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.table
}

// Settled reports whether this node has no partition in motion: nothing
// waiting to be handed over to it, nothing it is handing over, and no
// member re-joining a moved room.
func (c *Cluster) Settled() bool {
	c.mu.Lock()
	busy := len(c.pending) > 0 || c.handoffs > 0
	c.mu.Unlock()
	return !busy && !c.edge.moving()
}

// GossipAddr is the address the node gossips on ("" for a cluster of one).
func (c *Cluster) GossipAddr() string {
	if c.ml == nil {
		return ""
	}
	return c.ml.GossipAddr()
}

// alive reports whether a node was alive at the last refresh.
func (c *Cluster) aliveNode(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.alive[name]
}

// route returns the owner of a room in this node's view.
func (c *Cluster) route(roomName string) (part int, owner string) {
	c.mu.Lock()
	t := c.table
	c.mu.Unlock()
	return t.OwnerOf(roomName)
}

// serving reports whether this node serves partition p now. c.parts[p]
// is held (read or write) by the caller.
func (c *Cluster) servingErr(p int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.table.Owner(p) != c.self {
		return protocol.NewError(protocol.CodeRoomMoved, "this node does not own the room")
	}
	if _, ok := c.pending[p]; ok {
		return protocol.NewError(protocol.CodeUnavailable, "the room is moving here")
	}
	return nil
}

// local runs fn for a room this node owns, with its partition read-locked,
// so that a handoff cannot seal the room halfway through.
func (c *Cluster) local(roomName string, fn func() error) error {
	p := PartitionOf(roomName, c.cfg.Partitions)
	c.parts[p].RLock()
	defer c.parts[p].RUnlock()
	if err := c.servingErr(p); err != nil {
		return err
	}
	return fn()
}

// do runs an op on the room's owner: here, or over the owner's link. It
// retries while the owner is moving or unreachable, up to RetryTimeout.
func (c *Cluster) do(ctx context.Context, op, roomName string, here func() error, there func(l *link, owner string) error) error {
	return c.doAs(ctx, op, roomName, "", here, there)
}

// doAs is do for an op of a member's connection: not_joined from an owner
// while this node holds the member means the room is moving under it (the
// new owner has not seen it re-join yet), and is retried too.
func (c *Cluster) doAs(ctx context.Context, op, roomName, conn string, here func() error, there func(l *link, owner string) error) error {
	deadline := time.Now().Add(c.cfg.RetryTimeout)
	wait := 5 * time.Millisecond
	for {
		_, owner := c.route(roomName)
		var err error
		switch {
		case owner == "":
			err = protocol.NewError(protocol.CodeUnavailable, "no node serves rooms now")
		case owner == c.self:
			err = c.local(roomName, here)
		default:
			var l *link
			if l, err = c.linkTo(ctx, owner); err == nil {
				err = there(l, owner)
			}
			c.cfg.Metrics.Forwarded(op)
		}
		if !retryable(err) && !c.movingMember(err, roomName, conn) || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		case <-c.stop:
			return err
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// movingMember reports whether err is a not_joined that can only be
// transient: the edge holds conn's member of the room.
func (c *Cluster) movingMember(err error, roomName, conn string) bool {
	var pe *protocol.Error
	if conn == "" || !errors.As(err, &pe) || pe.Code != protocol.CodeNotJoined {
		return false
	}
	return c.edge.holds(roomName, conn)
}

func retryable(err error) bool {
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		return false
	}
	return pe.Code == protocol.CodeRoomMoved || pe.Code == protocol.CodeUnavailable
}

// linkTo returns the link to peer, dialing it when this node's name sorts
// lower, or waiting for the peer to dial otherwise.
func (c *Cluster) linkTo(ctx context.Context, peer string) (*link, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.LinkDialTimeout)
	defer cancel()
	for {
		c.mu.Lock()
		l := c.links[peer]
		ch := c.linkCh
		dial := l == nil && c.self < peer && !c.dialing[peer]
		if dial {
			c.dialing[peer] = true
		}
		closed := c.closed
		gone := c.ml != nil && !c.alive[peer]
		c.mu.Unlock()
		if closed {
			return nil, protocol.NewError(protocol.CodeShutdown, "node shutting down")
		}
		if l != nil {
			return l, nil
		}
		if gone {
			return nil, protocol.Errorf(protocol.CodeUnavailable, "node %s is gone", peer)
		}
		if dial {
			c.wg.Add(1)
			go c.dialPeer(peer)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, protocol.Errorf(protocol.CodeUnavailable, "no link to node %s", peer)
		}
	}
}

// dialPeer dials a peer once and adopts the link.
func (c *Cluster) dialPeer(peer string) {
	defer c.wg.Done()
	defer func() {
		c.mu.Lock()
		delete(c.dialing, peer)
		c.notifyLinksLocked()
		c.mu.Unlock()
	}()
	n, ok := c.ml.Node(peer)
	if !ok || !n.Alive || n.Meta.HTTPAddr == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.LinkDialTimeout)
	defer cancel()
	ws, err := c.dial(ctx, peer, n.Meta.HTTPAddr)
	if err != nil {
		c.log.Debug("dial peer failed", slog.String("peer", peer), slog.Any("err", err))
		return
	}
	c.adoptLink(peer, ws)
}

// adoptLink starts a link on a fresh connection, replacing an older one.
func (c *Cluster) adoptLink(peer string, ws *websocket.Conn) {
	l := newLink(c, peer, ws)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = ws.Close()
		return
	}
	old := c.links[peer]
	c.links[peer] = l
	c.notifyLinksLocked()
	c.cfg.Metrics.LinkUp()
	c.wg.Add(1)
	c.mu.Unlock()
	if old != nil {
		old.close()
	}
	go l.readLoop()
}

func (c *Cluster) notifyLinksLocked() {
	close(c.linkCh)
	c.linkCh = make(chan struct{})
}

func (c *Cluster) linkOf(peer string) *link {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.links[peer]
}

// linkClosed forgets a link and re-homes the members it carried.
func (c *Cluster) linkClosed(l *link) {
	c.mu.Lock()
	if c.links[l.peer] == l {
		delete(c.links, l.peer)
		c.notifyLinksLocked()
	}
	c.cfg.Metrics.LinkDown()
	c.mu.Unlock()
	c.edge.ownerLost(l.peer)
	c.requestRefresh()
}

// ensureLinks dials the alive peers this node is the dialer for.
func (c *Cluster) ensureLinks(nodes []Node) {
	for _, n := range nodes {
		if !n.Alive || n.Name == c.self || c.self > n.Name {
			continue
		}
		c.mu.Lock()
		need := c.links[n.Name] == nil && !c.dialing[n.Name] && !c.closed
		if need {
			c.dialing[n.Name] = true
		}
		c.mu.Unlock()
		if need {
			c.wg.Add(1)
			go c.dialPeer(n.Name)
		}
	}
}

// Drain hands every room of this node to the others: the node marks itself
// leaving, placement moves its partitions away, and Drain waits for the
// handoffs (or ctx). A cluster of one has nothing to hand over.
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
	if err := c.ml.SetState(StateLeaving); err != nil {
		return err
	}
	c.requestRefresh()
	for {
		c.mu.Lock()
		owned := len(c.table.Owned(c.self))
		busy := c.handoffs
		c.mu.Unlock()
		if owned == 0 && busy == 0 {
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

// Router ops.

func (c *Cluster) Join(ctx context.Context, req room.JoinRequest, sub room.Subscriber) error {
	m := c.edge.add(req, sub)
	err := c.joinAt(ctx, m, req)
	if err != nil {
		c.edge.remove(m)
	}
	return err
}

// joinAt registers member m with its room's owner.
func (c *Cluster) joinAt(ctx context.Context, m *member, req room.JoinRequest) error {
	return c.do(ctx, opJoin, req.Room, func() error {
		m.setOwner(c.self)
		return c.rooms.Join(req, m)
	}, func(l *link, owner string) error {
		m.setOwner(owner)
		_, err := l.call(ctx, &linkFrame{Op: opJoin, R: req.Room, C: req.Conn, U: req.User, I: req.Info,
			P: req.Presence, Since: req.Since, H: req.History, Obs: req.Observer, Owner: owner, S: req.ID})
		return err
	})
}

func (c *Cluster) Leave(_ context.Context, name string, sub room.Subscriber) {
	c.leave(name, sub, false)
}

func (c *Cluster) Drop(_ context.Context, name string, sub room.Subscriber) { c.leave(name, sub, true) }

// leave takes a local subscriber out of a room, at once or with grace.
func (c *Cluster) leave(name string, sub room.Subscriber, grace bool) {
	m := c.edge.removeSub(name, sub)
	if m == nil {
		return
	}
	if !grace {
		c.unregister(name, m)
		return
	}
	switch owner := m.ownerName(); {
	case owner == c.self:
		c.rooms.Drop(name, m)
	case owner != "":
		if l := c.linkOf(owner); l != nil {
			l.send(&linkFrame{T: lfRequest, Op: opDrop, R: name, C: m.req.Conn})
		}
	}
}

func (c *Cluster) Publish(ctx context.Context, req room.PublishRequest) (uint64, error) {
	var seq uint64
	err := c.doAs(ctx, opPub, req.Room, req.Conn, func() (err error) {
		seq, err = c.rooms.Publish(req)
		return err
	}, func(l *link, owner string) error {
		a, err := l.call(ctx, &linkFrame{Op: opPub, R: req.Room, C: req.Conn, U: req.User, D: req.Data,
			Eph: req.Ephemeral, K: req.Key, API: req.FromAPI, Owner: owner})
		if err == nil {
			seq = a.S
		}
		return err
	})
	return seq, err
}

func (c *Cluster) SetState(ctx context.Context, req room.SetRequest) (uint64, error) {
	var seq uint64
	err := c.doAs(ctx, opSet, req.Room, req.Conn, func() (err error) {
		seq, err = c.rooms.SetState(req)
		return err
	}, func(l *link, owner string) error {
		a, err := l.call(ctx, &linkFrame{Op: opSet, R: req.Room, C: req.Conn, U: req.User, K: req.Key,
			D: req.Value, API: req.FromAPI, Owner: owner})
		if err == nil {
			seq = a.S
		}
		return err
	})
	return seq, err
}

func (c *Cluster) UpdatePresence(ctx context.Context, req room.PresenceRequest) error {
	err := c.doAs(ctx, opPres, req.Room, req.Conn, func() error {
		return c.rooms.UpdatePresence(req)
	}, func(l *link, owner string) error {
		_, err := l.call(ctx, &linkFrame{Op: opPres, R: req.Room, C: req.Conn, D: req.Data, Owner: owner})
		return err
	})
	if err == nil {
		c.edge.presenceChanged(req.Room, req.Conn, req.Data)
	}
	return err
}

func (c *Cluster) Settings(name string) room.Namespace { return c.rooms.Settings(name) }

// remoteRead runs a read op at the owner and decodes its body into v.
func (c *Cluster) remoteRead(ctx context.Context, f linkFrame, v any, here func() error) (bool, error) {
	found := true
	err := c.do(ctx, f.Op, f.R, here, func(l *link, owner string) error {
		g := f
		g.Owner = owner
		a, err := l.call(ctx, &g)
		if err != nil {
			return err
		}
		if a.N == 0 {
			found = false
			return nil
		}
		return msgpack.Unmarshal(a.B, v)
	})
	return found, err
}

func (c *Cluster) Info(ctx context.Context, name string) (RoomInfo, bool, error) {
	var info RoomInfo
	found, err := c.remoteRead(ctx, linkFrame{Op: opInfo, R: name}, &info.Info, func() error {
		var ok bool
		info.Info, ok = c.rooms.Info(name)
		if !ok {
			return errNotHere
		}
		return nil
	})
	if errors.Is(err, errNotHere) {
		return info, false, nil
	}
	_, info.Owner = c.route(name)
	return info, found && err == nil, err
}

// errNotHere marks a read of a room that is not live.
var errNotHere = errors.New("room not live")

func (c *Cluster) Presence(ctx context.Context, name string) ([]protocol.Member, bool, error) {
	var members []protocol.Member
	found, err := c.remoteRead(ctx, linkFrame{Op: opPresence, R: name}, &members, func() error {
		var ok bool
		if members, ok = c.rooms.Presence(name); !ok {
			return errNotHere
		}
		return nil
	})
	if errors.Is(err, errNotHere) {
		return nil, false, nil
	}
	return members, found && err == nil, err
}

type stateWire struct {
	State map[string]protocol.Raw `msgpack:"st"`
	Seq   uint64                  `msgpack:"s"`
}

func (c *Cluster) State(ctx context.Context, name string) (map[string]protocol.Raw, uint64, bool, error) {
	var w stateWire
	found, err := c.remoteRead(ctx, linkFrame{Op: opState, R: name}, &w, func() error {
		var ok bool
		if w.State, w.Seq, ok = c.rooms.State(name); !ok {
			return errNotHere
		}
		return nil
	})
	if errors.Is(err, errNotHere) {
		return nil, 0, false, nil
	}
	return w.State, w.Seq, found && err == nil, err
}

type historyWire struct {
	Epoch  string   `msgpack:"e"`
	Frames [][]byte `msgpack:"f"`
}

func (c *Cluster) History(ctx context.Context, name string, since uint64, limit int) (string, []*room.Event, bool, error) {
	var w historyWire
	var events []*room.Event
	local := false
	found, err := c.remoteRead(ctx, linkFrame{Op: opHistory, R: name, S: since, N: limit}, &w, func() error {
		var ok bool
		local = true
		if w.Epoch, events, ok = c.rooms.History(name, since, limit); !ok {
			return errNotHere
		}
		return nil
	})
	if errors.Is(err, errNotHere) {
		return "", nil, false, nil
	}
	if err != nil || !found {
		return "", nil, false, err
	}
	if !local {
		for _, f := range w.Frames {
			ev, err := eventFromFrame(name, w.Epoch, f)
			if err != nil {
				return "", nil, false, err
			}
			events = append(events, ev)
		}
	}
	return w.Epoch, events, true, nil
}

func (c *Cluster) Kick(ctx context.Context, name, user string, code protocol.Code, msg string) (int, error) {
	var n int
	err := c.do(ctx, opKick, name, func() error {
		n = c.rooms.Kick(name, user, code, msg)
		return nil
	}, func(l *link, owner string) error {
		a, err := l.call(ctx, &linkFrame{Op: opKick, R: name, U: user, Code: code, Msg: msg, Owner: owner})
		if err == nil {
			n = a.N
		}
		return err
	})
	return n, err
}

// localRooms lists the live rooms this node owns and serves.
func (c *Cluster) localRooms(prefix string) []RoomInfo {
	var out []RoomInfo
	for _, info := range c.rooms.Rooms(prefix) {
		if _, owner := c.route(info.Room); owner == c.self {
			out = append(out, RoomInfo{Info: info, Owner: c.self})
		}
	}
	return out
}

func (c *Cluster) Rooms(ctx context.Context, prefix string) ([]RoomInfo, error) {
	all := c.localRooms(prefix)
	if c.ml == nil {
		return all, nil
	}
	for _, n := range c.ml.Nodes() {
		if !n.Alive || n.Name == c.self {
			continue
		}
		l, err := c.linkTo(ctx, n.Name)
		if err != nil {
			return nil, err
		}
		a, err := l.call(ctx, &linkFrame{Op: opRooms, R: prefix})
		if err != nil {
			return nil, err
		}
		var theirs []RoomInfo
		if err := msgpack.Unmarshal(a.B, &theirs); err != nil {
			return nil, err
		}
		all = append(all, theirs...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Room < all[j].Room })
	return all, nil
}

func (c *Cluster) Members(ctx context.Context) []NodeInfo {
	if c.ml == nil {
		return []NodeInfo{{Name: c.self, Addr: c.cfg.HTTPAddr, State: "alive", Rooms: len(c.localRooms("")), Partitions: c.cfg.Partitions, Self: true}}
	}
	c.mu.Lock()
	t := c.table
	c.mu.Unlock()
	var out []NodeInfo
	for _, n := range c.ml.Nodes() {
		state := "alive"
		switch {
		case !n.Alive:
			state = "dead"
		case n.Meta.State == StateLeaving:
			state = "leaving"
		}
		owned := 0
		for range t.Owned(n.Name) {
			owned++
		}
		info := NodeInfo{Name: n.Name, Addr: n.Meta.HTTPAddr, State: state, Self: n.Name == c.self, Partitions: owned}
		if n.Name == c.self {
			info.Rooms = len(c.localRooms(""))
		} else if n.Alive {
			if l := c.linkOf(n.Name); l != nil {
				if a, err := l.call(ctx, &linkFrame{Op: opRooms}); err == nil {
					var theirs []RoomInfo
					if msgpack.Unmarshal(a.B, &theirs) == nil {
						info.Rooms = len(theirs)
					}
				}
			}
		}
		out = append(out, info)
	}
	return out
}
