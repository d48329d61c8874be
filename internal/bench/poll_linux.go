//go:build linux

package bench

import (
	"errors"
	"io"
	"net"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/roomd/roomd/internal/epoll"
	"github.com/roomd/roomd/internal/wsframe"
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
	// The poller reads a duplicate of the socket, and the original is
	// closed: that takes it out of the Go runtime's own epoll set, which
	// would otherwise wake a runtime thread for every message as well.
	fd, err := detachFD(tc)
	if err != nil {
		return err
	}
	c.setFD(fd)
	if p.r.arrival {
		// The kernel stamps each segment as it arrives (on loopback, as
		// the server's write hands it over); recvmsg returns the stamp.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			return err
		}
	}
	if err := c.feed(nil, now()); err != nil {
		return err
	}
	return p.set.Add(fd, c, unix.EPOLLIN|unix.EPOLLRDHUP)
}

// detachFD takes a duplicate of a connection's socket (non-blocking, as Go
// opened it) out of the Go runtime, and closes the connection.
func detachFD(tc *net.TCPConn) (int, error) {
	defer tc.Close()
	rc, err := tc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(s uintptr) { fd, derr = unix.Dup(int(s)) }); err != nil {
		return -1, err
	}
	return fd, derr
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
	if p.r.arrival {
		rd := &stampedRead{buf: buf}
		read = func(fd int32, c source) { p.readStamped(fd, c, rd) }
	}
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
	n, err := unix.Read(int(fd), buf)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
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

// stampedRead is a poller's recvmsg state: the read buffer and the control
// buffer the arrival stamp comes in.
type stampedRead struct {
	buf []byte
	oob [64]byte
}

// readStamped is read with the arrival time of what it read: the kernel's
// stamp of the last segment taken (earlier ones arrived no later, so a
// message read together with a later one is given the later one's arrival:
// its latency is overstated, never understated). The read's lag behind that
// arrival goes to the run's read-lag histogram. (unix.Recvmsg allocates the
// sender's address it returns, unused here: one small allocation per read.)
func (p *poller) readStamped(fd int32, c source, rd *stampedRead) {
	n, oobn, _, _, err := unix.Recvmsg(int(fd), rd.buf, rd.oob[:], 0)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return
	case err != nil:
		p.end(fd, c, err)
		return
	case n == 0:
		p.end(fd, c, io.EOF)
		return
	}
	readNS := now()
	at, ok := arrivalStamp(rd.oob[:oobn])
	if !ok {
		at = readNS // no stamp (should not happen): the read time stands in
	}
	p.r.readLag.Record(int(fd), timeDur(readNS-at))
	if err := c.feed(rd.buf[:n], at); err != nil {
		p.end(fd, c, err)
	}
}

// arrivalStamp finds the SCM_TIMESTAMPNS control message in oob and returns
// its time in Unix nanoseconds. Header size, alignment and the timespec's
// width are the platform's (x/sys/unix), so it holds on 32-bit Linux too.
func arrivalStamp(oob []byte) (int64, bool) {
	hdr := unix.CmsgLen(0) // the header, aligned: where the data starts
	for len(oob) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		size := int(h.Len)
		if size < hdr || size > len(oob) {
			return 0, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && size >= unix.CmsgLen(sizeofTimespec) {
			ts := (*unix.Timespec)(unsafe.Pointer(&oob[hdr]))
			return ts.Nano(), true
		}
		next := unix.CmsgSpace(size - hdr)
		if next >= len(oob) {
			break
		}
		oob = oob[next:]
	}
	return 0, false
}

const sizeofTimespec = int(unsafe.Sizeof(unix.Timespec{}))

// rawPong answers a ping on a polled connection: a masked pong written
// straight to the socket (a few bytes: a full socket buffer drops it, and
// the server's next ping gets the next answer).
func (c *wsConn) rawPong(p []byte) error {
	if len(p) > wsframe.MaxControlPayload {
		return errServerFrame
	}
	var buf [2 + 4 + wsframe.MaxControlPayload]byte
	f := wsframe.AppendMasked(buf[:0], wsframe.OpPong, p, wsframe.NewMaskKey())
	_, err := unix.Write(c.fd, f)
	if err == unix.EAGAIN {
		return nil
	}
	return err
}

// closeRaw closes a polled connection's socket with a reset (as abort).
func closeRaw(fd int) {
	_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	_ = unix.Close(fd)
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
