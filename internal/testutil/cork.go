package testutil

import (
	"net"
	"sync"
)

// CorkConn holds back what is written on it while corked, then sends it in
// one write: what was written meanwhile (TLS records, frames) reaches the
// peer together, in one segment on loopback.
type CorkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	held   []byte
}

func (c *CorkConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		c.held = append(c.held, b...)
		return len(b), nil
	}
	return c.Conn.Write(b)
}

// SetCorked corks or uncorks the connection; uncorking sends what was held.
func (c *CorkConn) SetCorked(on bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = on
	if on || len(c.held) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.held)
	c.held = nil
	return err
}
