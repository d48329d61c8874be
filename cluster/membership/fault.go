package membership

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Faults cuts a node off from chosen peers, as a network partition would:
// gossip packets and streams to and from a cut peer's gossip address are
// dropped (memberlist's transport), and so is every peer-link frame to and
// from a cut peer (the links' TCP connections stay open, as through a
// network that silently loses traffic): the cluster package asks CutPeer
// before each. It is for tests of partitions; production nodes have none
// (Config.Faults and cluster.Config.Faults nil).
type Faults struct {
	mu     sync.Mutex
	names  map[string]bool // cut peers, by node name
	addrs  map[string]bool // their gossip addresses, host:port
	frozen bool            // FreezeView
}

// NewFaults returns a Faults that cuts nothing.
func NewFaults() *Faults {
	return &Faults{names: map[string]bool{}, addrs: map[string]bool{}}
}

// Cut cuts the node off from the peer name, which gossips at gossipAddr.
func (f *Faults) Cut(name, gossipAddr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.names[name] = true
	f.addrs[gossipAddr] = true
}

// Heal ends every cut.
func (f *Faults) Heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.names)
	clear(f.addrs)
}

// FreezeView freezes (or thaws) the node's view of the membership: while it
// is frozen, the cluster layer keeps the placement table and the set of
// nodes it believes alive as they were (it still dials links to the members
// it sees), as a node whose gossip lags would. Tests use it to hold two
// nodes in disagreement about owners. Heal does not thaw it.
func (f *Faults) FreezeView(frozen bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frozen = frozen
}

// ViewFrozen reports whether FreezeView froze the view (a nil Faults never
// does).
func (f *Faults) ViewFrozen() bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frozen
}

// CutPeer reports whether the peer named name is cut off (a nil Faults
// cuts nothing).
func (f *Faults) CutPeer(name string) bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.names[name]
}

func (f *Faults) cutAddr(addr string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addrs[addr]
}

var errCut = errors.New("cluster: cut off by a fault")

// faultTransport is memberlist's transport with f's cuts.
type faultTransport struct {
	memberlist.NodeAwareTransport
	f       *Faults
	packets chan *memberlist.Packet
	streams chan net.Conn
	stop    chan struct{}
	wg      sync.WaitGroup
}

func newFaultTransport(t memberlist.NodeAwareTransport, f *Faults) *faultTransport {
	ft := &faultTransport{NodeAwareTransport: t, f: f, packets: make(chan *memberlist.Packet),
		streams: make(chan net.Conn), stop: make(chan struct{})}
	ft.wg.Add(2)
	go func() {
		defer ft.wg.Done()
		for {
			select {
			case p := <-t.PacketCh():
				if !f.cutAddr(p.From.String()) {
					select {
					case ft.packets <- p:
					case <-ft.stop:
						return
					}
				}
			case <-ft.stop:
				return
			}
		}
	}()
	go func() {
		defer ft.wg.Done()
		for {
			select {
			case c := <-t.StreamCh():
				// A stream is told apart by its peer's address, which for an
				// outgoing TCP connection is an ephemeral port: streams are
				// cut where they are dialed (both sides dial their own).
				select {
				case ft.streams <- c:
				case <-ft.stop:
					_ = c.Close()
					return
				}
			case <-ft.stop:
				return
			}
		}
	}()
	return ft
}

func (t *faultTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }
func (t *faultTransport) StreamCh() <-chan net.Conn           { return t.streams }

func (t *faultTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.f.cutAddr(addr) {
		return time.Now(), nil // lost on the way
	}
	return t.NodeAwareTransport.WriteTo(b, addr)
}

func (t *faultTransport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	if t.f.cutAddr(addr.Addr) {
		return time.Now(), nil
	}
	return t.NodeAwareTransport.WriteToAddress(b, addr)
}

func (t *faultTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.f.cutAddr(addr) {
		return nil, errCut
	}
	return t.NodeAwareTransport.DialTimeout(addr, timeout)
}

func (t *faultTransport) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.f.cutAddr(addr.Addr) {
		return nil, errCut
	}
	return t.NodeAwareTransport.DialAddressTimeout(addr, timeout)
}

func (t *faultTransport) Shutdown() error {
	err := t.NodeAwareTransport.Shutdown()
	close(t.stop)
	t.wg.Wait()
	return err
}
