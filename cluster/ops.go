package cluster

import (
	"context"
	"errors"
	"github.com/roomd/roomd/cluster/membership"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
	"github.com/vmihailenco/msgpack/v5"
	"sort"
)

// The Router's operations, each run on the room's owner.

func (c *Cluster) Join(ctx context.Context, req room.JoinRequest, sub room.Subscriber) error {
	m := c.edge.add(req, sub)
	err := c.joinAt(ctx, m, req)
	if err != nil {
		c.edge.remove(m)
		return err
	}
	m.mu.Lock()
	m.joining = false
	later := m.moveLater && m.owner != ""
	m.moveLater = false
	m.mu.Unlock()
	if later && !c.servesAt(req.Room, m.ownerName()) {
		m.moved()
	}
	return nil
}

// joinAt registers member m with its room's owner.
func (c *Cluster) joinAt(ctx context.Context, m *member, req room.JoinRequest) error {
	return c.do(ctx, opJoin, req.Room, func() error {
		m.setOwner(c.self)
		return c.joinHere(ctx, req, m)
	}, func(l *link, owner string) error {
		m.setOwner(owner)
		_, err := l.call(ctx, &linkFrame{Op: opJoin, R: req.Room, C: req.Conn, U: req.User, I: req.Info,
			P: req.Presence, Since: req.Since, H: req.History, Obs: req.Observer, Owner: owner, S: req.ID, Kn: req.Known})
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
	c.unregister(name, m, grace)
}

func (c *Cluster) Publish(ctx context.Context, req room.PublishRequest) (uint64, error) {
	var seq uint64
	err := c.doAs(ctx, opPub, req.Room, req.Conn, func() (err error) {
		seq, err = c.write(ctx, req.Room, func() (*room.Command, uint64, error) { return c.rooms.PreparePublish(req) })
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
		seq, err = c.write(ctx, req.Room, func() (*room.Command, uint64, error) {
			cmd, err := c.rooms.PrepareSet(req)
			return cmd, 0, err
		})
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
		return c.local(req.Room, func() error { return c.rooms.UpdatePresence(req) })
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
	err := c.do(ctx, f.Op, f.R, func() error { return c.local(f.R, here) }, func(l *link, owner string) error {
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
		return c.local(name, func() error {
			n = c.rooms.Kick(name, user, code, msg)
			return nil
		})
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
		led, followed := c.repl.counts()
		return []NodeInfo{{Name: c.self, Addr: c.cfg.HTTPAddr, State: "alive", Rooms: len(c.localRooms("")),
			Partitions: led, Self: true, Led: led, Followed: followed, Settled: c.Settled()}}
	}
	led := map[string]int{}
	for p := range c.cfg.Partitions {
		if name := c.repl.leaderOf(p); name != "" {
			led[name]++
		}
	}
	var out []NodeInfo
	for _, n := range c.ml.Nodes() {
		state := "alive"
		switch {
		case !n.Alive:
			state = "dead"
		case n.Meta.State == membership.StateLeaving:
			state = "leaving"
		}
		info := NodeInfo{Name: n.Name, Addr: n.Meta.HTTPAddr, State: state, Self: n.Name == c.self, Partitions: led[n.Name]}
		if info.Self {
			s := c.repl.stats()
			info.Led, info.Followed, info.Asleep, info.ReplicaLag = s.led, s.followed, s.asleep, s.lag
			info.Settled = c.Settled()
		}
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
