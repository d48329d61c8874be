package room

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/roomd/roomd/protocol"
)

// Lock order (outer first):
//
//	room.mu  ->  Manager.mu
//
// Manager.mu guards only the rooms map and the closed flag. It is never held
// while a room lock is taken: code that needs several rooms copies them out of
// the map first. A room's lock may be held while Manager.mu is taken (the idle
// drop removes the room from the map that way). Subscriber.Deliver is called
// with the room lock held and must not call back into the room or Manager.
// Install holds the lock of a room nobody can see yet while it waits for a
// live room's lock (handoff.go); no other code holds two room locks. Where
// these locks sit among the other packages' is in docs/LOCKS.md.

// Defaults of Config and Namespace.
const (
	DefaultHistorySize      = 100
	DefaultHistoryTTL       = 10 * time.Minute
	DefaultMaxMessageBytes  = 64 << 10
	DefaultMaxPresenceBytes = 1 << 10
	DefaultStateMaxKeys     = 10_000
	DefaultStateMaxBytes    = 4 << 20
	DefaultPresenceGrace    = 5 * time.Second
	MinDedupeWindow         = 5 * time.Minute
	DefaultDedupeMaxKeys    = 10_000
	DefaultMaxRooms         = 100_000
	DefaultMaxStateBytes    = 256 << 20
	DefaultCreateRate       = 10
)

// Names of the node-wide limits, for Config.OnLimit.
const (
	LimitNodeRooms  = "node_rooms"
	LimitNodeState  = "node_state"
	LimitCreateRate = "room_create_rate"
)

// ErrClosed is returned by every operation on a closed Manager.
var ErrClosed = protocol.NewError(protocol.CodeShutdown, "room manager closed")

// Manager holds the rooms of one node: it creates a room on its first join (or
// API write) and drops it after its namespace's IdleTTL once nobody is in it.
// It starts no goroutine of its own: grace and idle timers are time.AfterFunc
// timers, all stopped by Close.
//
// Subscribers are told apart by their interface value, so a Subscriber's
// dynamic type must be comparable (normally a pointer).
type Manager struct {
	cfg   Config // filled
	def   Namespace
	nss   map[string]Namespace
	grace time.Duration // <= 0: none
	now   func() time.Time

	mu       sync.Mutex // guards rooms, closed and creators; see the lock order above
	rooms    map[string]*room
	closed   bool
	creators creators // room creation rate per user

	stateBytes nodeBytes // state of every room, for MaxStateBytes (state.go)
}

// New validates cfg, fills its zero values and returns a Manager.
func New(cfg Config) (*Manager, error) {
	def, err := fillNamespace(cfg.Default)
	if err != nil {
		return nil, fmt.Errorf("room: default namespace: %w", err)
	}
	nss := make(map[string]Namespace, len(cfg.Namespaces))
	for name, ns := range cfg.Namespaces {
		if name != "" && (strings.IndexByte(name, ':') >= 0 || !protocol.ValidRoomName(name)) {
			return nil, fmt.Errorf("room: invalid namespace name %q", name)
		}
		f, err := fillNamespace(ns)
		if err != nil {
			return nil, fmt.Errorf("room: namespace %q: %w", name, err)
		}
		nss[name] = f
	}
	switch {
	case cfg.PresenceGrace == 0:
		cfg.PresenceGrace = DefaultPresenceGrace
	case cfg.PresenceGrace < 0:
		cfg.PresenceGrace = -1
	}
	switch {
	case cfg.PresenceWindow == 0:
		cfg.PresenceWindow = DefaultPresenceWindow
	case cfg.PresenceWindow > MaxPresenceWindow:
		return nil, fmt.Errorf("room: PresenceWindow %v over %v", cfg.PresenceWindow, MaxPresenceWindow)
	}
	switch {
	case cfg.PresenceWindowMax == 0:
		cfg.PresenceWindowMax = DefaultPresenceWindowMax
	case cfg.PresenceWindowMax > MaxPresenceWindow:
		return nil, fmt.Errorf("room: PresenceWindowMax %v over %v", cfg.PresenceWindowMax, MaxPresenceWindow)
	}
	if cfg.DedupeWindow < MinDedupeWindow {
		cfg.DedupeWindow = MinDedupeWindow
	}
	switch {
	case cfg.DedupeMaxKeys == 0:
		cfg.DedupeMaxKeys = DefaultDedupeMaxKeys
	case cfg.DedupeMaxKeys < 0:
		return nil, errors.New("room: negative DedupeMaxKeys")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxRooms < 0 || cfg.MaxStateBytes < 0 || cfg.CreateBurst < 0 || cfg.CreateRate < 0 ||
		math.IsNaN(cfg.CreateRate) || math.IsInf(cfg.CreateRate, 0) {
		return nil, errors.New("room: negative or invalid node limit")
	}
	orDefault(&cfg.MaxRooms, DefaultMaxRooms)
	orDefault(&cfg.MaxStateBytes, DefaultMaxStateBytes)
	orDefault(&cfg.CreateRate, DefaultCreateRate)
	orDefault(&cfg.CreateBurst, max(1, int(math.Ceil(10*cfg.CreateRate))))
	if cfg.OnLimit == nil {
		cfg.OnLimit = func(string) {}
	}
	cfg.Default = def
	cfg.Namespaces = nss
	m := &Manager{
		cfg:   cfg,
		def:   def,
		nss:   nss,
		grace: cfg.PresenceGrace,
		now:   cfg.Now,
		rooms: make(map[string]*room),
	}
	m.stateBytes.max = cfg.MaxStateBytes
	return m, nil
}

// orDefault sets a zero *v to def.
func orDefault[T int | int64 | float64](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

func fillNamespace(ns Namespace) (Namespace, error) {
	for _, v := range []struct {
		name string
		n    int64
	}{
		{"HistorySize", int64(ns.HistorySize)},
		{"HistoryTTL", int64(ns.HistoryTTL)},
		{"IdleTTL", int64(ns.IdleTTL)},
		{"MaxMembers", int64(ns.MaxMembers)},
		{"MaxMessageBytes", int64(ns.MaxMessageBytes)},
		{"MaxPresenceBytes", int64(ns.MaxPresenceBytes)},
		{"StateMaxKeys", int64(ns.StateMaxKeys)},
		{"StateMaxBytes", int64(ns.StateMaxBytes)},
		{"StateMaxValueBytes", int64(ns.StateMaxValueBytes)},
		{"PublishBurst", int64(ns.PublishBurst)},
		{"RoomPublishBurst", int64(ns.RoomPublishBurst)},
		{"PresenceLarge", int64(ns.PresenceLarge)},
	} {
		if v.n < 0 {
			return ns, fmt.Errorf("negative %s", v.name)
		}
	}
	for _, v := range []struct {
		name string
		r    float64
	}{{"PublishRate", ns.PublishRate}, {"RoomPublishRate", ns.RoomPublishRate}} {
		if v.r < 0 || math.IsNaN(v.r) || math.IsInf(v.r, 0) {
			return ns, fmt.Errorf("invalid %s %v", v.name, v.r)
		}
	}
	if ns.HistorySize == 0 {
		ns.HistorySize = DefaultHistorySize
	}
	if ns.HistoryTTL == 0 {
		ns.HistoryTTL = DefaultHistoryTTL
	}
	if ns.IdleTTL == 0 {
		ns.IdleTTL = ns.HistoryTTL
	}
	if ns.MaxMessageBytes == 0 {
		ns.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if ns.MaxPresenceBytes == 0 {
		ns.MaxPresenceBytes = DefaultMaxPresenceBytes
	}
	if ns.StateMaxKeys == 0 {
		ns.StateMaxKeys = DefaultStateMaxKeys
	}
	if ns.StateMaxBytes == 0 {
		ns.StateMaxBytes = DefaultStateMaxBytes
	}
	if ns.StateMaxValueBytes == 0 {
		ns.StateMaxValueBytes = ns.MaxMessageBytes
	}
	if ns.PublishRate > 0 && ns.PublishBurst == 0 {
		ns.PublishBurst = max(1, int(math.Ceil(2*ns.PublishRate)))
	}
	if ns.RoomPublishRate > 0 && ns.RoomPublishBurst == 0 {
		ns.RoomPublishBurst = max(1, int(math.Ceil(ns.RoomPublishRate/10)))
	}
	return ns, nil
}

// Settings returns the effective settings (defaults filled) of a room name's
// namespace.
func (m *Manager) Settings(room string) Namespace {
	if ns, ok := m.nss[protocol.Namespace(room)]; ok {
		return ns
	}
	return m.def
}

func validName(name string) error {
	if !protocol.ValidRoomName(name) {
		return protocol.Errorf(protocol.CodeInvalidRoom, "invalid room name %q", name)
	}
	return nil
}

// creation says whether and for whom a lookup may create a room.
type creation struct {
	ok bool
	// by is who creates it, for the per-user rate: a user, or a
	// connection's key; empty for the HTTP API, which is not limited.
	by string
}

// noCreate looks a room up without creating it.
var noCreate = creation{}

// createdBy creates a room on behalf of a member's user (an anonymous
// member: its connection), or of the HTTP API (fromAPI).
func createdBy(user, conn string, fromAPI bool) creation {
	switch {
	case fromAPI:
		return creation{ok: true}
	case user != "":
		return creation{ok: true, by: "u:" + user}
	default:
		return creation{ok: true, by: "c:" + conn}
	}
}

// lookup returns the live room of that name, creating it when c allows and
// the node's room budget and the creator's rate do. It returns (nil, nil)
// when the room does not exist and c does not allow creating it. The caller
// holds no room lock (Manager.mu is taken and released here).
func (m *Manager) lookup(name string, c creation) (*room, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	r := m.rooms[name]
	if r == nil && c.ok {
		if err := m.mayCreateLocked(c); err != nil {
			return nil, err
		}
		ns := m.Settings(name)
		r = newRoom(m, name, ns)
		m.rooms[name] = r
	}
	return r, nil
}

// mayCreate checks that c may create a room now: the node's room budget and
// the creator's rate. Where rooms are made by commands (command.go), it is
// checked where the command is prepared.
func (m *Manager) mayCreate(c creation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mayCreateLocked(c)
}

// mayCreateLocked is mayCreate with m.mu held.
func (m *Manager) mayCreateLocked(c creation) error {
	if len(m.rooms) >= m.cfg.MaxRooms {
		m.cfg.OnLimit(LimitNodeRooms)
		return protocol.Errorf(protocol.CodeOverloaded, "this node holds its maximum of %d rooms", m.cfg.MaxRooms)
	}
	if c.by != "" && !m.creators.allow(c.by, m.now(), m.cfg.CreateRate, m.cfg.CreateBurst) {
		m.cfg.OnLimit(LimitCreateRate)
		return protocol.NewError(protocol.CodeRateLimited, "creating rooms too fast")
	}
	return nil
}

// lockRoom finds the room (creating it when c allows) and returns it
// locked. A room found dead (dropped by its idle timer between the lookup and
// the lock) is retried: the next lookup finds a fresh room or none.
func (m *Manager) lockRoom(name string, c creation) (*room, error) {
	for {
		r, err := m.lookup(name, c)
		if err != nil || r == nil {
			return nil, err
		}
		r.mu.Lock()
		if !r.dead {
			return r, nil
		}
		r.mu.Unlock()
	}
}

// lockLive locks and returns the live room of that name, or returns nil
// when the name is invalid or no such room is live. r.mu is held on return
// when r is not nil.
func (m *Manager) lockLive(name string) *room {
	if !protocol.ValidRoomName(name) {
		return nil
	}
	r, _ := m.lockRoom(name, noCreate)
	return r
}

// remove deletes r from the rooms map. r.mu is held on entry (lock order).
func (m *Manager) remove(r *room) {
	m.mu.Lock()
	if m.rooms[r.name] == r {
		delete(m.rooms, r.name)
	}
	m.mu.Unlock()
}

// snapshot returns the live rooms whose name starts with prefix.
func (m *Manager) snapshot(prefix string) []*room {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*room, 0, len(m.rooms))
	for name, r := range m.rooms {
		if strings.HasPrefix(name, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// Info describes a live room; ok is false when the room does not exist.
func (m *Manager) Info(name string) (Info, bool) {
	r := m.lockLive(name)
	if r == nil {
		return Info{}, false
	}
	defer r.mu.Unlock()
	return r.info(), true
}

// Rooms describes the live rooms whose name starts with prefix, sorted by name.
func (m *Manager) Rooms(prefix string) []Info {
	rs := m.snapshot(prefix)
	out := make([]Info, 0, len(rs))
	for _, r := range rs {
		r.mu.Lock()
		if !r.dead {
			out = append(out, r.info())
		}
		r.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Room < out[j].Room })
	return out
}

// Stats counts the rooms, members (graced ones included) and observers held.
func (m *Manager) Stats() Stats {
	var s Stats
	for _, r := range m.snapshot("") {
		r.mu.Lock()
		if !r.dead {
			s.Rooms++
			s.Members += len(r.members)
			s.Observers += r.observers
		}
		r.mu.Unlock()
	}
	s.StateBytes = m.stateBytes.n.Load()
	return s
}

// Close stops every timer and makes every room unusable: later operations
// fail with ErrClosed. Subscribers are not told; the caller closes its
// connections itself. Close is safe to call more than once.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	rooms := m.rooms
	m.rooms = nil
	m.mu.Unlock()
	for _, r := range rooms {
		r.mu.Lock()
		r.kill()
		r.mu.Unlock()
	}
}

var epochEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// newEpoch returns a fresh random epoch: 12 base32 characters (60 bits).
func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return epochEncoding.EncodeToString(b[:])[:12]
}

// creatorSweepMin is the number of tracked creators below which idle ones
// are left alone.
const creatorSweepMin = 1024

// creators holds the room creation rate of each user. Manager.mu guards it.
type creators struct {
	m         map[string]*rate.Limiter
	nextSweep int
}

// allow takes one room creation of by through its rate.
func (c *creators) allow(by string, now time.Time, r float64, burst int) bool {
	lim := c.m[by]
	if lim == nil {
		if c.m == nil {
			c.m = make(map[string]*rate.Limiter)
		}
		if len(c.m) >= max(c.nextSweep, creatorSweepMin) {
			for k, l := range c.m { // forget the refilled: a new limiter would be the same
				if l.TokensAt(now) >= float64(burst) {
					delete(c.m, k)
				}
			}
			c.nextSweep = 2 * len(c.m)
		}
		lim = rate.NewLimiter(rate.Limit(r), burst)
		c.m[by] = lim
	}
	return lim.AllowN(now, 1)
}
