package room

import (
	"testing"
)

// A transition applies once as the record's next N, whoever proposed it
// and however often; marks only move forward and never past the room; the
// record travels in the room's snapshot.
func TestHookRecord(t *testing.T) {
	m := newManager(t, Config{})
	var noted []string
	m.WatchOccupancy(func(room string) { noted = append(noted, room) })
	join(t, m, "r", "c1", "u1")
	if len(noted) != 1 {
		t.Fatalf("watcher told %v, want the first member", noted)
	}
	cmd := m.PrepareTransition("r")
	if cmd == nil || cmd.Op != CmdTransition || cmd.Seq != 1 {
		t.Fatalf("prepare: %+v, want transition 1", cmd)
	}
	for i, want := range []uint64{1, 0} { // the same proposal twice
		n, err := m.Apply(decodeOrFail(t, cmd))
		if err != nil || n != want {
			t.Fatalf("apply %d: %d %v, want %d", i, n, err, want)
		}
	}
	if c := m.PrepareTransition("r"); c != nil {
		t.Fatalf("prepare when the record agrees: %+v", c)
	}
	epoch, st, _ := m.HookState("r")
	if st.Trans != 1 || !st.Occupied() {
		t.Fatalf("record %+v", st)
	}
	pub(t, m, "r", "c1", 1)
	for _, c := range []*Command{
		NewHookMark("r", epoch, MarkPublished, 5), // beyond the room's seq 1
		NewHookMark("r", epoch, MarkTrans, 1),
		NewHookMark("r", epoch, MarkTrans, 0), // backwards: ignored
		NewHookMark("r", "other-epoch", MarkTrans, 1),
	} {
		_, _ = m.Apply(c)
	}
	_, st, _ = m.HookState("r")
	if st != (HookState{Published: 1, Trans: 1, TransAt: cmd.At, TransDone: 1}) {
		t.Fatalf("record after marks %+v", st)
	}
	snap, ok := m.Export("r")
	if !ok {
		t.Fatal("export")
	}
	b, err := snap.MarshalMsgpack()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeSnapshot(b)
	if err != nil || back.Hooks != st {
		t.Fatalf("snapshot's record %+v, %v; want %+v", back.Hooks, err, st)
	}
	back.Hooks.TransDone = 7
	if err := m.Install(back); err == nil {
		t.Fatal("installed a snapshot whose mark is beyond its transitions")
	}
}

// decodeOrFail round-trips a command through its wire form, as the log
// carries it.
func decodeOrFail(t *testing.T, c *Command) *Command {
	t.Helper()
	d, err := DecodeCommand(c.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// An empty room whose record says occupied, or whose last transition is
// not acknowledged, is not dropped: its vacated is recorded and delivered
// first, and the watcher is told.
// emptiedOccupied returns a replicated Manager whose room "r" has a record
// that says occupied and no member left (its only member kicked), and the
// room's epoch.
func emptiedOccupied(t *testing.T, watch func(string)) (*Manager, string) {
	t.Helper()
	m := newManager(t, Config{})
	m.Replicate(func(string, string, uint64) {}) // drops are commands
	if watch != nil {
		m.WatchOccupancy(watch)
	}
	if _, err := m.Apply(NewCreate("r")); err != nil {
		t.Fatal(err)
	}
	join(t, m, "r", "c1", "u1")
	if _, err := m.Apply(decodeOrFail(t, m.PrepareTransition("r"))); err != nil {
		t.Fatal(err)
	}
	m.Kick("r", "u1", 0, "")
	epoch, st, _ := m.HookState("r")
	if !st.Occupied() {
		t.Fatalf("record %+v, want occupied", st)
	}
	return m, epoch
}

func TestDropWaitsForTheRecord(t *testing.T) {
	var noted int
	m, epoch := emptiedOccupied(t, func(string) { noted++ })
	before := noted
	m.Apply(&Command{Op: CmdDrop, Room: "r", Epoch: epoch})
	if _, ok := m.Info("r"); !ok {
		t.Fatal("dropped while the record says occupied")
	}
	if noted == before {
		t.Fatal("the watcher was not told")
	}
	vac := m.PrepareTransition("r")
	if vac == nil || vac.Seq != 2 {
		t.Fatalf("prepare vacated: %+v", vac)
	}
	m.Apply(decodeOrFail(t, vac))
	m.Apply(&Command{Op: CmdDrop, Room: "r", Epoch: epoch})
	if _, ok := m.Info("r"); !ok {
		t.Fatal("dropped before vacated was acknowledged")
	}
	m.Apply(NewHookMark("r", epoch, MarkTrans, 2))
	m.Apply(&Command{Op: CmdDrop, Room: "r", Epoch: epoch})
	if _, ok := m.Info("r"); ok {
		t.Fatal("not dropped once settled")
	}
}

// A drop proposed by an owner that delivers no lifecycle hook (they were
// turned off after the record said occupied) is forced: the record does not
// keep the room forever.
func TestForcedDropIgnoresTheRecord(t *testing.T) {
	m, epoch := emptiedOccupied(t, nil)
	m.Apply(decodeOrFail(t, (&Command{Op: CmdDrop, Room: "r", Epoch: epoch, Force: true})))
	if _, ok := m.Info("r"); ok {
		t.Fatal("a forced drop left the room")
	}
}
