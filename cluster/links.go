package cluster

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/roomd/roomd/cluster/membership"
	"github.com/roomd/roomd/protocol"
)

// The set of peer links: who dials whom, waiting for a link, and what
// happens when one closes.

// linkTo returns the link to peer, dialing it when this node's name sorts
// lower, or waiting for the peer to dial otherwise.
func (c *Cluster) linkTo(ctx context.Context, peer string) (*link, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.LinkDialTimeout)
	defer cancel()
	for {
		c.mu.Lock()
		l := c.links[peer]
		ch := c.linkCh
		// A peer whose link just failed is likely dead (a crash is seen
		// here long before membership says so): fail at once, so that the
		// op is routed again (to the group's next leader) instead of
		// waiting out the dial timeout. The refresh loop redials it.
		suspect := l == nil && time.Since(c.lost[peer]) < suspectFor
		dial := l == nil && !suspect && c.self < peer && !c.dialing[peer]
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
		if gone || suspect {
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
	conn, br, err := c.dial(ctx, peer, n.Meta.HTTPAddr)
	if err != nil {
		c.log.Debug("dial peer failed", slog.String("peer", peer), slog.Any("err", err))
		c.mu.Lock()
		c.lost[peer] = time.Now()
		c.mu.Unlock()
		return
	}
	c.adoptLink(peer, conn, br, true)
}

// adoptLink starts a link on a fresh connection, replacing an older one.
// br reads conn from the end of the handshake; dialed: this node dialed it.
func (c *Cluster) adoptLink(peer string, conn net.Conn, br *bufio.Reader, dialed bool) {
	l := newLink(c, peer, conn, br, dialed)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = conn.Close()
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
	c.announceServed(l)
}

// suspectFor is how long after a link to a peer failed (or a dial) ops for
// rooms served there fail at once rather than wait for a link.
const suspectFor = 2 * time.Second

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
		c.lost[l.peer] = time.Now()
		c.notifyLinksLocked()
	}
	c.cfg.Metrics.LinkDown()
	c.mu.Unlock()
	c.repl.wakeLedBy(l.peer)
	c.edge.ownerLost(l.peer)
	c.requestRefresh()
}

// ensureLinks dials the alive peers this node is the dialer for.
func (c *Cluster) ensureLinks(nodes []membership.Node) {
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
