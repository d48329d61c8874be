//go:build linux

package bench

import (
	"crypto/rand"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/roomd/roomd/internal/epoll"
)

// canPoll reports that subscribers and SSE observers can be read by pollers.
const canPoll = true

// A poller reads many connections (WebSocket subscribers, SSE observers)
// from one goroutine: an epoll set (level-triggered) and one read buffer for
// all of them, instead of a goroutine, a netpoll wake-up and a gorilla or
// net/http reader per connection and message. On a machine the bench shares
// with the server, what the bench does not spend on reading is left to the
// server. While messages flow, a poller takes what arrived once per
// ReadTick instead of being woken for each message: a thread waking for
// every message costs both processes a context switch (the server's write
// does the waking), which on loopback is a large share of what a delivery
// costs, and would not be the server's on a real network. The latency
// reported includes up to one tick.
type poller struct {
	r    *runner
	set  *epoll.Set[source]
	done chan struct{}
}

func newPoller(r *runner) (*poller, error) {
	set, err := epoll.New[source](512)
	if err != nil {
		return nil, err
	}
	p := &poller{r: r, set: set, done: make(chan struct{})}
	go p.loop()
	return p, nil
}

// add hands an opened connection to the poller, first handling what its
// opening read past its end. The caller has counted it in r.readers.
func (p *poller) add(c source) error {
	tc, ok := c.netConn().(*net.TCPConn)
	if !ok {
		return errors.New("bench: not a TCP connection")
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	// The poller reads a duplicate of the socket, and the original is
	// closed: that takes it out of the Go runtime's own epoll set, which
	// would otherwise wake a runtime thread for every message as well.
	fd, derr := -1, error(nil)
	if err := rc.Control(func(sfd uintptr) { fd, derr = syscall.Dup(int(sfd)) }); err != nil {
		return err
	}
	if derr != nil {
		return derr
	}
	c.setFD(fd)
	_ = tc.Close()
	if err := c.feed(nil, now()); err != nil {
		return err
	}
	return p.set.Add(fd, c, syscall.EPOLLIN|syscall.EPOLLRDHUP)
}

// stop ends the loop and waits for it; the connections it still held are
// done reading. Only then may they be closed (their descriptors reused).
func (p *poller) stop() {
	p.set.Stop()
	<-p.done
}

func (p *poller) loop() {
	defer close(p.done)
	buf := make([]byte, 256<<10)
	read := func(fd int32, c source) { p.read(fd, c, buf) }
	tick := p.r.cfg.ReadTick
	for {
		// Block until something is ready; then, while traffic flows, take
		// what arrived every tick rather than waking for every message.
		timeout := -1
		for {
			n, stopped, err := p.set.Wait(timeout, read)
			if stopped || err != nil {
				p.finish(err)
				return
			}
			if n == 0 {
				break // a quiet tick: back to blocking
			}
			if tick <= 0 {
				continue
			}
			time.Sleep(tick)
			timeout = 0
		}
	}
}

// read takes what one connection's socket holds and hands it to the
// connection, stamped with the time it was read.
func (p *poller) read(fd int32, c source, buf []byte) {
	n, err := syscall.Read(int(fd), buf)
	switch {
	case err == syscall.EAGAIN || err == syscall.EINTR:
		return
	case err != nil:
		p.end(fd, c, err)
		return
	case n == 0:
		p.end(fd, c, io.EOF)
		return
	}
	if err := c.feed(buf[:n], now()); err != nil {
		p.end(fd, c, err)
	}
}

// rawPong answers a ping on a polled connection: a masked pong written
// straight to the socket (a few bytes: a full socket buffer drops it, and
// the server's next ping gets the next answer).
func (c *wsConn) rawPong(p []byte) error {
	if len(p) > 125 {
		return errServerFrame
	}
	var f [2 + 4 + 125]byte
	f[0], f[1] = 0x8A, 0x80|byte(len(p))
	key := f[2:6]
	_, _ = rand.Read(key)
	for i, b := range p {
		f[6+i] = b ^ key[i%4]
	}
	_, err := syscall.Write(c.fd, f[:6+len(p)])
	if err == syscall.EAGAIN {
		return nil
	}
	return err
}

// closeRaw closes a polled connection's socket with a reset (as abort).
func closeRaw(fd int) {
	_ = syscall.SetsockoptLinger(fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
	_ = syscall.Close(fd)
}

// end takes a connection that ended out of the set.
func (p *poller) end(fd int32, c source, err error) {
	p.set.Remove(int(fd))
	c.ended(err)
	p.r.readers.Done()
}

// finish releases every connection still held when the loop ends.
func (p *poller) finish(err error) {
	for _, c := range p.set.Close() {
		if err != nil {
			c.ended(err)
		}
		p.r.readers.Done()
	}
}
