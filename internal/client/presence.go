package client

import (
	"github.com/vmihailenco/msgpack/v5"

	"github.com/roomd/roomd/protocol"
)

// Presence is one member's view of a room's presence, kept the way
// docs/PROTOCOL.md §2.9 says a client applies what it gets: the joined
// snapshot, then each pres frame (join and upd replace an entry, leave
// removes one, all replaces the list, cnt is the count in large-room mode).
type Presence struct {
	Members map[string]protocol.Member // by connection id
	Large   bool                       // the room is in large-room mode: Count, and Members is a sample
	Count   int
	Frames  int // pres frames applied
}

// NewPresence returns an empty view.
func NewPresence() *Presence { return &Presence{Members: map[string]protocol.Member{}} }

// Apply applies a joined or pres frame (others are ignored) and returns the
// connection ids the frame named.
func (p *Presence) Apply(f *protocol.Frame) ([]string, error) {
	var named []string
	put := func(raw protocol.Raw) error {
		ms, err := Members(raw)
		for _, m := range ms {
			p.Members[m.C] = m
			named = append(named, m.C)
		}
		return err
	}
	switch f.T {
	case protocol.TypeJoined:
		clear(p.Members)
		p.Large, p.Count = f.Cnt > 0, int(f.Cnt)
		return named, put(f.Pres)
	case protocol.TypePres:
		p.Frames++
		if f.Cnt > 0 {
			p.Large, p.Count = true, int(f.Cnt)
		}
		if !f.All.IsNil() {
			p.Large = false
			clear(p.Members)
			if err := put(f.All); err != nil {
				return named, err
			}
		}
		if err := put(f.Join); err != nil {
			return named, err
		}
		if err := put(f.Upd); err != nil {
			return named, err
		}
		var gone []string
		if !f.Leave.IsNil() {
			if err := msgpack.Unmarshal(f.Leave, &gone); err != nil {
				return named, err
			}
		}
		for _, c := range gone {
			delete(p.Members, c)
		}
		return append(named, gone...), nil
	}
	return nil, nil
}
