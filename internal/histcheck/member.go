package histcheck

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/protocol"
)

// ErrTerminal is wrapped by Member.Err when the server answered with a code
// a client must not retry (500 and above).
var ErrTerminal = errors.New("histcheck: terminal code")

// MemberConfig describes one client.
type MemberConfig struct {
	// Name identifies the client in the history. Required.
	Name string
	// URLs are the nodes' base URLs; the client dials them in turn, from
	// the first, on each reconnect. Required.
	URLs []string
	// Rooms are joined on every connection, with since once known.
	Rooms []string
	// History receives what the client does and sees. Required.
	History *History
	// Record makes the client record the durable events it receives (a
	// subscriber). Publishers record only their publishes and answers.
	Record bool
	// Silence is how long a connection may stay silent before the client
	// takes it for dead and reconnects. Zero means the protocol's rule:
	// welcome.ping plus 10 s.
	Silence time.Duration
	// DialTimeout bounds a dial and its hello. Zero means 3 s.
	DialTimeout time.Duration
	// OnFrame, when set, sees every frame the client receives, after the
	// client took it in, on the client's reading goroutine.
	OnFrame func(*protocol.Frame)
}

// Member is a client that stays in its rooms across reconnects, as the SDK
// does: after a lost connection, a bye or a silent link it connects to the
// next URL with its previous connection id and re-joins each room with
// since; after left with a reconnectable code it re-joins; publishes not
// yet acknowledged are sent again, with their keys, once their room is
// joined. Everything goes into the history.
type Member struct {
	cfg MemberConfig

	mu      sync.Mutex
	conn    *client.Conn // nil while connecting
	id      string       // connection id, for hello.c
	node    string
	next    int // index of the next URL to dial
	nextID  uint64
	rooms   map[string]*roomState
	reqs    map[uint64]request     // requests in flight on conn, by id
	pending map[string]*pendingPub // unacknowledged publishes, by key
	fail    error
}

type roomState struct {
	epoch   string
	last    uint64
	joined  bool
	joining uint64 // id of the join in flight, 0 when none
}

type request struct {
	room, key string // key is "" for a join
}

type pendingPub struct {
	room, key string
	sent      uint64 // id in flight, 0 when it must be (re)sent
}

// NewMember returns a client; Run connects it.
func NewMember(cfg MemberConfig) (*Member, error) {
	if cfg.Name == "" || len(cfg.URLs) == 0 || cfg.History == nil {
		return nil, errors.New("histcheck: a member needs a name, URLs and a history")
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 3 * time.Second
	}
	m := &Member{cfg: cfg, rooms: map[string]*roomState{}, reqs: map[uint64]request{}, pending: map[string]*pendingPub{}}
	for _, r := range cfg.Rooms {
		m.rooms[r] = &roomState{}
	}
	return m, nil
}

// Run connects and reads until ctx ends or the server answers with a
// terminal code, reconnecting whenever a connection ends.
func (m *Member) Run(ctx context.Context) {
	why := "start"
	for ctx.Err() == nil && m.Err() == nil {
		c, err := m.dial(ctx)
		if err != nil {
			return
		}
		m.cfg.History.Add(Event{Op: OpReconnect, Client: m.cfg.Name, Node: c.Welcome.N, Err: why})
		why = m.serve(ctx, c).Error()
	}
}

// dial connects to the next URL that takes a hello, with backoff.
func (m *Member) dial(ctx context.Context) (*client.Conn, error) {
	for attempt := 0; ; attempt++ {
		m.mu.Lock()
		url := m.cfg.URLs[m.next%len(m.cfg.URLs)]
		m.next++
		id := m.id
		m.mu.Unlock()
		dctx, cancel := context.WithTimeout(ctx, m.cfg.DialTimeout)
		c, _, err := client.Dial(dctx, url, &client.DialOptions{Timeout: m.cfg.DialTimeout})
		if err == nil {
			extra := client.M{}
			if id != "" {
				extra["c"] = id
			}
			if err = c.Hello(dctx, "", extra); err != nil {
				_ = c.Close()
			}
		}
		cancel()
		if err == nil {
			return c, nil
		}
		if !sleep(ctx, backoff(attempt)) {
			return nil, ctx.Err()
		}
	}
}

// backoff is the wait before the attempt after attempt n: 50 ms doubling
// up to 1 s.
func backoff(n int) time.Duration {
	return min(50*time.Millisecond<<min(n, 5), time.Second)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// serve joins the rooms on c and reads from it until it fails, which it
// returns.
func (m *Member) serve(ctx context.Context, c *client.Conn) error {
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	defer c.Close()
	silence := m.cfg.Silence
	if silence == 0 {
		silence = time.Duration(c.Welcome.Ping)*time.Second + 10*time.Second
	}
	m.mu.Lock()
	m.conn, m.id, m.node = c, c.Welcome.C, c.Welcome.N
	clear(m.reqs)
	for _, p := range m.pending {
		p.sent = 0
	}
	var out []any
	for _, r := range m.cfg.Rooms {
		st := m.rooms[r]
		st.joined, st.joining = false, 0
		out = append(out, m.joinLocked(r))
	}
	m.mu.Unlock()
	if err := c.Send(out...); err != nil {
		m.lost(c)
		return err
	}
	for {
		rctx, cancel := context.WithTimeout(ctx, silence)
		f, err := c.Next(rctx)
		cancel()
		if err != nil {
			m.lost(c)
			var ce *client.CloseError
			if errors.As(err, &ce) {
				if code, ok := protocol.CodeFromClose(ce.Code); ok && !code.Reconnect() {
					m.failf("%w: closed with %d %s", ErrTerminal, code, ce.Text)
				}
			}
			return err
		}
		err = m.frame(c, f)
		if m.cfg.OnFrame != nil {
			m.cfg.OnFrame(f)
		}
		if err != nil {
			return err
		}
	}
}

// lost forgets c as the current connection.
func (m *Member) lost(c *client.Conn) {
	m.mu.Lock()
	if m.conn == c {
		m.conn = nil
	}
	m.mu.Unlock()
}

// joinLocked builds the join of room r and marks it in flight. m.mu is
// held.
func (m *Member) joinLocked(r string) client.M {
	st := m.rooms[r]
	m.nextID++
	st.joining = m.nextID
	m.reqs[m.nextID] = request{room: r}
	j := client.M{"t": protocol.TypeJoin, "id": m.nextID, "r": r}
	if st.epoch != "" {
		j["since"] = client.M{"e": st.epoch, "s": st.last}
	}
	return j
}

// rejoinLocked builds the join of room r, unless the room is joined or a
// join of it is in flight already (its answer decides). m.mu is held.
func (m *Member) rejoinLocked(r string) any {
	if st := m.rooms[r]; st.joined || st.joining != 0 {
		return nil
	}
	return m.joinLocked(r)
}

// pubLocked builds the publish of p and marks it in flight. m.mu is held.
func (m *Member) pubLocked(p *pendingPub) client.M {
	m.nextID++
	p.sent = m.nextID
	m.reqs[m.nextID] = request{room: p.room, key: p.key}
	m.cfg.History.Add(Event{Op: OpPub, Room: p.room, Client: m.cfg.Name, Node: m.node, Key: p.key})
	return client.M{"t": protocol.TypePub, "id": m.nextID, "r": p.room, "d": p.key, "key": p.key}
}

// Publish sends a durable message into room whose payload and idempotency
// key are key, now if the room is joined, else once it is; until its ok it
// is sent again on every new join of the room.
func (m *Member) Publish(room, key string) {
	m.mu.Lock()
	p := &pendingPub{room: room, key: key}
	m.pending[key] = p
	c, st := m.conn, m.rooms[room]
	var f client.M
	if c != nil && st != nil && st.joined {
		f = m.pubLocked(p)
	}
	m.mu.Unlock()
	if f != nil {
		_ = c.Send(f)
	}
}

// frame takes in one frame from c.
func (m *Member) frame(c *client.Conn, f *protocol.Frame) error {
	switch f.T {
	case protocol.TypeJoined:
		return m.joined(c, f)
	case protocol.TypeMsg, protocol.TypeState:
		m.mu.Lock()
		defer m.mu.Unlock()
		if st := m.rooms[f.R]; st != nil && st.joined {
			m.deliverLocked(st, f)
		}
	case protocol.TypeOK:
		m.mu.Lock()
		defer m.mu.Unlock()
		req, ok := m.reqs[f.ID]
		delete(m.reqs, f.ID)
		if ok && req.key != "" {
			m.cfg.History.Add(Event{Op: OpAck, Room: req.room, Client: m.cfg.Name, Node: m.node, Key: req.key, Epoch: m.rooms[req.room].epoch, Seq: f.S})
			delete(m.pending, req.key)
		}
	case protocol.TypeErr:
		m.answerErr(c, f)
	case protocol.TypeLeft:
		m.cfg.History.Add(Event{Op: OpLeft, Room: f.R, Client: m.cfg.Name, Node: m.nodeName(), Code: f.Code, Err: f.Msg})
		m.mu.Lock()
		st := m.rooms[f.R]
		if st != nil {
			st.joined = false
		}
		m.mu.Unlock()
		if st == nil {
			return nil
		}
		if !f.Code.Reconnect() {
			m.failf("%w: left %s with %d %s", ErrTerminal, f.R, f.Code, f.Msg)
			return m.Err()
		}
		wait := 200 * time.Millisecond
		if f.Code == protocol.CodeRoomMoved {
			wait = 0
		}
		m.later(c, wait, func() any { return m.rejoinLocked(f.R) })
	case protocol.TypeBye:
		m.cfg.History.Add(Event{Op: OpLeft, Client: m.cfg.Name, Node: m.nodeName(), Code: f.Code, Err: "bye: " + f.Msg})
	}
	return nil
}

// later builds a frame with build (m.mu held) after wait and sends it on c,
// unless c is no longer the connection by then.
func (m *Member) later(c *client.Conn, wait time.Duration, build func() any) {
	send := func() {
		m.mu.Lock()
		if m.conn != c {
			m.mu.Unlock()
			return
		}
		f := build()
		m.mu.Unlock()
		if f != nil {
			_ = c.Send(f)
		}
	}
	if wait == 0 {
		send()
		return
	}
	time.AfterFunc(wait, send)
}

// joined takes a joined answer in: a resume's log events, then the answer;
// then it sends the room's unacknowledged publishes.
func (m *Member) joined(c *client.Conn, f *protocol.Frame) error {
	log, err := client.Log(f.Log)
	if err != nil {
		return fmt.Errorf("histcheck: joined log: %w", err)
	}
	m.mu.Lock()
	st := m.rooms[f.R]
	if st == nil || st.joining != f.ID {
		m.mu.Unlock()
		return nil
	}
	delete(m.reqs, f.ID)
	st.joining, st.joined = 0, true
	j := Event{Op: OpJoined, Room: f.R, Client: m.cfg.Name, Node: m.node, Epoch: f.E, Seq: f.S, Reset: f.Reset}
	if f.Reset {
		m.record(j)
		st.epoch = f.E
	}
	for i := range log {
		if !f.Reset {
			m.deliverLocked(st, &log[i])
		}
	}
	if !f.Reset {
		m.record(j)
	}
	st.epoch, st.last = f.E, f.S
	var out []any
	for _, k := range slices.Sorted(maps.Keys(m.pending)) {
		if p := m.pending[k]; p.room == f.R && p.sent == 0 {
			out = append(out, m.pubLocked(p))
		}
	}
	m.mu.Unlock()
	if len(out) > 0 {
		return c.Send(out...)
	}
	return nil
}

// record adds e when the member records what it sees.
func (m *Member) record(e Event) {
	if m.cfg.Record {
		m.cfg.History.Add(e)
	}
}

// deliverLocked takes a durable event of a joined room in. m.mu is held.
func (m *Member) deliverLocked(st *roomState, f *protocol.Frame) {
	key := "state:" + f.K
	if f.T == protocol.TypeMsg {
		v, _ := client.Value(f.D)
		key, _ = v.(string)
	}
	m.record(Event{Op: OpDeliver, Room: f.R, Client: m.cfg.Name, Node: m.node, Epoch: st.epoch, Seq: f.S, Key: key})
	st.last = f.S
}

// answerErr takes an err in: a join or a publish that failed is sent again
// after a pause when its code is transient; a join that fails otherwise
// stops the member, a publish is given up.
func (m *Member) answerErr(c *client.Conn, f *protocol.Frame) {
	m.mu.Lock()
	req, ok := m.reqs[f.ID]
	delete(m.reqs, f.ID)
	node := m.node
	m.mu.Unlock()
	if !ok {
		return
	}
	// Codes below 100 are transient (the room moves, a rate, an
	// overload); a publish may also meet its room between a left and the
	// re-join (not_joined). Anything else would fail again.
	retry := f.Code < 100 || (req.key != "" && f.Code == protocol.CodeNotJoined)
	if req.key == "" {
		m.cfg.History.Add(Event{Op: OpJoinErr, Room: req.room, Client: m.cfg.Name, Node: node, Code: f.Code, Err: f.Msg})
		m.mu.Lock()
		if st := m.rooms[req.room]; st.joining == f.ID {
			st.joining = 0
		}
		m.mu.Unlock()
		if !retry {
			m.failf("%w: join %s: %d %s", ErrTerminal, req.room, f.Code, f.Msg)
			_ = c.Close()
			return
		}
		m.later(c, 200*time.Millisecond, func() any { return m.rejoinLocked(req.room) })
		return
	}
	m.cfg.History.Add(Event{Op: OpPubErr, Room: req.room, Client: m.cfg.Name, Node: node, Key: req.key, Code: f.Code, Err: f.Msg})
	m.mu.Lock()
	p := m.pending[req.key]
	if p != nil && p.sent == f.ID {
		p.sent = 0
		if !retry {
			delete(m.pending, req.key)
			p = nil
		}
	}
	m.mu.Unlock()
	if p == nil {
		return
	}
	m.later(c, 200*time.Millisecond, func() any {
		if st := m.rooms[p.room]; m.pending[p.key] != p || p.sent != 0 || !st.joined {
			return nil
		}
		return m.pubLocked(p)
	})
}

// Pending is the number of publishes not yet acknowledged.
func (m *Member) Pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.pending)
}

// GiveUp records every unacknowledged publish as given up (OpPubErr with
// code 0) and forgets it.
func (m *Member) GiveUp() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, p := range m.pending {
		m.cfg.History.Add(Event{Op: OpPubErr, Room: p.room, Client: m.cfg.Name, Node: m.node, Key: k, Err: "given up"})
		delete(m.pending, k)
	}
}

// Position is where the member stands in room: the epoch and the last seq
// it has seen, and whether it is joined now.
func (m *Member) Position(room string) (epoch string, last uint64, joined bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.rooms[room]
	if st == nil {
		return "", 0, false
	}
	return st.epoch, st.last, st.joined
}

// Node is the name of the node the member is connected to ("" while it
// connects).
func (m *Member) Node() string { return m.nodeName() }

func (m *Member) nodeName() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conn == nil {
		return ""
	}
	return m.node
}

// ConnID is the id of the member's connection (welcome.c), kept across
// reconnects to the node that issued it.
func (m *Member) ConnID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.id
}

// Drop closes the current connection: the member reconnects to the next
// URL and re-joins with since.
func (m *Member) Drop() {
	m.mu.Lock()
	c := m.conn
	m.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// Err is why the member stopped on its own (a terminal code), or nil.
func (m *Member) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fail
}

func (m *Member) failf(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail == nil {
		m.fail = fmt.Errorf("%s: "+format, append([]any{m.cfg.Name}, args...)...)
	}
}
