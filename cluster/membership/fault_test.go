package membership

import "testing"

// A nil Faults (production) cuts and freezes nothing; Cut and Heal affect
// CutPeer, FreezeView alone the view.
func TestFaultsState(t *testing.T) {
	var none *Faults
	if none.CutPeer("a") || none.ViewFrozen() {
		t.Fatal("a nil Faults cuts or freezes")
	}
	f := NewFaults()
	f.Cut("a", "127.0.0.1:1")
	if !f.CutPeer("a") || f.CutPeer("b") || !f.cutAddr("127.0.0.1:1") {
		t.Fatal("Cut does not cut a, or cuts b")
	}
	f.FreezeView(true)
	f.Heal()
	if f.CutPeer("a") || f.cutAddr("127.0.0.1:1") {
		t.Fatal("Heal leaves a cut")
	}
	if !f.ViewFrozen() {
		t.Fatal("Heal thawed the view")
	}
	f.FreezeView(false)
	if f.ViewFrozen() {
		t.Fatal("FreezeView(false) left the view frozen")
	}
}
