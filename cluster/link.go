package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/roomd/roomd/internal/netio"
	"github.com/roomd/roomd/internal/wsframe"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// peerSubprotocol is the WebSocket subprotocol of peer links.
const peerSubprotocol = "roomd.peer.v1"

// Headers of a link's upgrade request.
const (
	hdrNode        = "X-Roomd-Node"
	hdrIncarnation = "X-Roomd-Incarnation"
)

var errLinkClosed = protocol.NewError(protocol.CodeUnavailable, "peer link closed")

// link is the one persistent connection between this node and a peer. Both
// sides send requests and events on it; the node whose name sorts lower
// dials. Its frames go out through a write turn (internal/netio), whose
// writer goroutine runs only while frames are queued; its reader handles
// requests and events in arrival order. Its frames are read and written
// with wsframe (masked on the dialer's side, as a client's must be);
// gorilla only answers the upgrade on the accepting side.
type link struct {
	c      *Cluster
	peer   string
	conn   net.Conn
	br     *bufio.Reader // reader-owned: what is read from conn
	log    *slog.Logger
	dialed bool // this node dialed: its frames are masked

	mu      sync.Mutex
	turn    netio.Turn
	queue   [][]byte
	qbytes  int // queued and taken by the turn, not yet written
	closed  bool
	calls   map[uint64]chan *linkFrame
	nextID  uint64
	subs    map[subKey]*linkSub    // owner side: this peer's members here
	last    map[string]*room.Event // owner side: last event sent per room
	perRoom map[string]int         // owner side: this peer's members per room
	done    chan struct{}

	batch [][]byte // turn-owned: the frames TakeLocked took
}

type subKey struct{ room, conn string }

func newLink(c *Cluster, peer string, conn net.Conn, br *bufio.Reader, dialed bool) *link {
	l := &link{
		c: c, peer: peer, conn: conn, br: br, log: c.log.With(slog.String("peer", peer)), dialed: dialed,
		calls:   make(map[uint64]chan *linkFrame),
		subs:    make(map[subKey]*linkSub),
		last:    make(map[string]*room.Event),
		perRoom: make(map[string]int),
		done:    make(chan struct{}),
	}
	l.turn.Init(l, netio.TurnConfig{Conn: conn, WG: &c.wg, Timeout: c.cfg.LinkWriteTimeout})
	return l
}

// send queues a frame. It never blocks: past LinkQueueMaxBytes the link is
// cut, and both sides recover as after any link loss.
func (l *link) send(f *linkFrame) {
	if l.c.cfg.Faults.CutPeer(l.peer) {
		return // lost on the way (a fault under test)
	}
	b, err := msgpack.Marshal(f)
	if err != nil {
		l.log.Error("encode link frame", slog.Any("err", err))
		return
	}
	if len(b) > l.c.cfg.LinkMaxMessage {
		// The peer would cut the link for it, and again on every resend.
		l.log.Error("peer link frame over cluster.link_max_message not sent; raise the setting on every node",
			slog.Int("bytes", len(b)), slog.Int("limit", l.c.cfg.LinkMaxMessage), slog.String("frame", f.T))
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if l.qbytes+len(b) > l.c.cfg.LinkQueueMaxBytes && l.qbytes > 0 {
		l.log.Warn("peer link queue overflowed; cutting the link")
		go l.close()
		return
	}
	l.queue = append(l.queue, b)
	l.qbytes += len(b)
	l.turn.KickLocked()
}

// The link is the netio.Source of its write turn: a piece is one binary
// message carrying the queued frames up to the peer's bound (and at least
// one; send refuses frames over it).

var _ netio.Source = (*link)(nil)

// Lock and Unlock are l.mu.
func (l *link) Lock()   { l.mu.Lock() }
func (l *link) Unlock() { l.mu.Unlock() }

// TakeLocked implements netio.Source. l.mu held.
func (l *link) TakeLocked(bool) netio.Due {
	if l.closed || len(l.queue) == 0 {
		l.queue = nil
		return netio.Idle
	}
	size := 0
	for len(l.queue) > 0 && (len(l.batch) == 0 || size+len(l.queue[0]) <= l.c.cfg.LinkMaxMessage) {
		size += len(l.queue[0])
		l.batch = append(l.batch, l.queue[0])
		l.queue[0] = nil
		l.queue = l.queue[1:]
	}
	return netio.Ready
}

// Render implements netio.Source: the message, masked when this node
// dialed.
func (l *link) Render(p *netio.Piece) {
	if len(l.batch) == 1 && !l.dialed {
		p.B = l.batch[0]
	} else {
		buf := p.Buffer()
		for _, f := range l.batch {
			buf = append(buf, f...)
		}
		p.B = buf
	}
	if l.dialed {
		key := wsframe.NewMaskKey()
		wsframe.Mask(key, p.B)
		p.H = wsframe.AppendMaskedHeader(p.Hdr[:0], wsframe.OpBinary, len(p.B), key)
	} else {
		p.H = wsframe.AppendHeader(p.Hdr[:0], wsframe.OpBinary, len(p.B))
	}
	p.Count, p.Size = len(l.batch), len(p.B)
	clear(l.batch)
	l.batch = l.batch[:0]
}

// WroteLocked implements netio.Source. l.mu held.
func (l *link) WroteLocked(p *netio.Piece) { l.qbytes -= p.Size }

// DroppedLocked implements netio.Source. l.mu held.
func (l *link) DroppedLocked(p *netio.Piece) { l.qbytes -= p.Size }

// Failed implements netio.Source: the link is cut.
func (l *link) Failed() { l.close() }

// call sends a request and waits for its answer.
func (l *link) call(ctx context.Context, f *linkFrame) (*linkFrame, error) {
	ch := make(chan *linkFrame, 1)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errLinkClosed
	}
	l.nextID++
	f.ID = l.nextID
	f.T = lfRequest
	l.calls[f.ID] = ch
	l.mu.Unlock()
	l.send(f)
	select {
	case a := <-ch:
		if a == nil {
			return nil, errLinkClosed
		}
		if a.Err {
			pe := protocol.NewError(a.Code, a.Msg)
			if a.Code == protocol.CodeRoomMoved && a.Owner != "" {
				return a, &movedError{err: pe, leader: a.Owner}
			}
			return a, pe
		}
		return a, nil
	case <-ctx.Done():
		l.mu.Lock()
		delete(l.calls, f.ID)
		l.mu.Unlock()
		return nil, protocol.NewError(protocol.CodeUnavailable, "peer did not answer in time")
	}
}

// readLoop handles everything the peer sends, in order, until the link
// fails; then it cleans up.
func (l *link) readLoop() {
	defer l.c.wg.Done()
	defer l.closed2()
	var split [][]byte
	rd := wsframe.Reader{Masked: !l.dialed}
	for {
		var buf bytes.Buffer // the frames decoded from it are the reader's to keep
		_, err := rd.ReadMessage(l.br, &buf, l.c.cfg.LinkMaxMessage)
		msg := buf.Bytes()
		if errors.Is(err, wsframe.ErrTooLarge) {
			l.log.Warn("peer link message over cluster.link_max_message; cutting the link",
				slog.Int("limit", l.c.cfg.LinkMaxMessage))
			l.c.cfg.Metrics.LinkOversized()
		}
		if err != nil {
			return
		}
		split, err = protocol.Split(split[:0], msg, 0)
		if err != nil {
			l.log.Warn("undecodable message on peer link", slog.Any("err", err))
			return
		}
		if l.c.cfg.Faults.CutPeer(l.peer) {
			continue // lost on the way (a fault under test)
		}
		for _, b := range split {
			var f linkFrame
			if err := msgpack.Unmarshal(b, &f); err != nil {
				l.log.Warn("bad frame on peer link", slog.Any("err", err))
				return
			}
			switch f.T {
			case lfRequest:
				id := f.ID
				reply := func(a *linkFrame) {
					a.T, a.ID = lfAnswer, id
					l.send(a)
				}
				if a := l.c.handleRequest(l, &f, reply); a != nil {
					reply(a)
				}
			case lfRaft:
				l.c.repl.receive(f.RM)
			case lfLeader:
				l.c.leaderAnnounced(l.peer, f.Part)
			case lfQuiesce:
				l.c.repl.sleepAll(f.Q)
			case lfRemoved:
				l.c.repl.removedFrom(f.Part, f.S, uint64(f.N), l.peer)
			case lfAnswer:
				l.mu.Lock()
				ch := l.calls[f.ID]
				delete(l.calls, f.ID)
				l.mu.Unlock()
				if ch != nil {
					ch <- &f
				}
			case lfEvent:
				l.c.edge.fromLink(l, &f)
			}
		}
	}
}

// close cuts the link; readLoop then cleans up.
func (l *link) close() {
	l.mu.Lock()
	already := l.closed
	l.closed = true
	l.turn.CloseLocked()
	l.mu.Unlock()
	if !already {
		_ = l.conn.Close()
	}
}

// closed2 runs once when the reader ends: pending calls fail, this peer's
// members here are dropped (with presence grace), and the cluster learns
// the link is gone.
func (l *link) closed2() {
	l.close()
	l.mu.Lock()
	calls := l.calls
	l.calls = map[uint64]chan *linkFrame{}
	subs := l.subs
	l.subs = map[subKey]*linkSub{}
	l.last = map[string]*room.Event{}
	l.perRoom = map[string]int{}
	l.mu.Unlock()
	for _, ch := range calls {
		ch <- nil
	}
	gone := !l.c.aliveNode(l.peer)
	for k, s := range subs {
		if gone {
			l.c.rooms.Leave(k.room, s)
		} else {
			l.c.rooms.Drop(k.room, s)
		}
	}
	if !gone && len(subs) > 0 {
		// If the peer turns out to be dead, its members leave at once
		// rather than at the end of their grace.
		l.c.orphan(l.peer, subs)
	}
	close(l.done)
	l.c.linkClosed(l)
}

// addSub registers (or finds) the proxy of one of the peer's members.
func (l *link) addSub(roomName, conn string) *linkSub {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := subKey{roomName, conn}
	if s := l.subs[k]; s != nil {
		return s
	}
	s := &linkSub{l: l, room: roomName, conn: conn}
	l.subs[k] = s
	l.perRoom[roomName]++
	return s
}

func (l *link) sub(roomName, conn string) *linkSub {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.subs[subKey{roomName, conn}]
}

func (l *link) removeSub(s *linkSub) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := subKey{s.room, s.conn}
	if l.subs[k] != s {
		return
	}
	delete(l.subs, k)
	if l.perRoom[s.room]--; l.perRoom[s.room] <= 0 {
		delete(l.perRoom, s.room)
		delete(l.last, s.room)
	}
}

// linkSub stands at an owner for one member on the peer. Every event the
// room hands to any of the peer's members goes over the link once.
type linkSub struct {
	l    *link
	room string
	conn string
}

var _ room.Subscriber = (*linkSub)(nil)

// Deliver implements room.Subscriber; it runs under the room's lock.
func (s *linkSub) Deliver(ev *room.Event) {
	l := s.l
	switch ev.Kind {
	case room.KindJoined:
		l.send(&linkFrame{T: lfEvent, Kind: ev.Kind, R: ev.Room, C: s.conn, Epoch: ev.Epoch, B: encodeJoined(ev.Joined)})
	case room.KindLeft:
		l.removeSub(s)
		l.send(&linkFrame{T: lfEvent, Kind: ev.Kind, R: ev.Room, C: s.conn, Code: ev.Code, Msg: ev.Msg})
	default:
		l.mu.Lock()
		dup := l.last[ev.Room] == ev
		if !dup {
			l.last[ev.Room] = ev
		}
		l.mu.Unlock()
		if !dup {
			l.send(&linkFrame{T: lfEvent, Kind: ev.Kind, R: ev.Room, Epoch: ev.Epoch, F: ev.Frame})
		}
	}
}

// PeerHandler serves GET /v1/peer: a plain GET gets a challenge (401 with
// X-Roomd-Challenge); an upgrade that answers one with the proof of the
// secret (linkauth.go) becomes a link dialed by a peer. Anything else gets
// 401 and nothing more.
func (c *Cluster) PeerHandler() http.Handler {
	up := websocket.Upgrader{
		Subprotocols:    []string{peerSubprotocol},
		ReadBufferSize:  32 << 10,
		WriteBufferSize: 32 << 10,
		CheckOrigin:     func(*http.Request) bool { return true },
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.auth == nil {
			http.Error(w, "unauthorized peer", http.StatusUnauthorized)
			return
		}
		if !websocket.IsWebSocketUpgrade(r) {
			w.Header().Set(hdrChallenge, c.auth.challenge(time.Now()))
			http.Error(w, "unauthorized peer", http.StatusUnauthorized)
			return
		}
		t, ok := dialerTranscript(r, c.self)
		err := errBadProof
		if ok {
			err = checkProof(r.Header.Get(hdrProof), c.auth.dialerProof(t))
		}
		if err == nil {
			err = c.auth.useChallenge(t.challenge, time.Now())
		}
		if err != nil {
			c.log.Warn("peer link refused", slog.String("remote", r.RemoteAddr), slog.String("peer", t.dialer), slog.Any("err", err))
			http.Error(w, "unauthorized peer", http.StatusUnauthorized)
			return
		}
		if t.dialer == c.self {
			http.Error(w, "bad peer name", http.StatusBadRequest)
			return
		}
		h := http.Header{}
		h.Set(hdrIncarnation, strconv.FormatInt(c.incarnation, 10))
		h.Set(hdrProof, c.auth.serverProof(t, c.incarnation))
		ws, err := up.Upgrade(w, r, h)
		if err != nil {
			return
		}
		// gorilla read nothing past the handshake (it refuses early
		// bytes): the link reads the socket from here.
		conn := ws.NetConn()
		c.markVerified(t.dialer, t.dialerInc)
		c.adoptLink(t.dialer, conn, bufio.NewReaderSize(conn, 32<<10), false)
	})
}

// dial opens a link to peer at its HTTP address: it fetches a challenge,
// upgrades with its proof, and checks the peer's.
func (c *Cluster) dial(ctx context.Context, peer, httpAddr string) (net.Conn, *bufio.Reader, error) {
	unreachable := protocol.Errorf(protocol.CodeUnavailable, "cannot reach node %s", peer)
	scheme := "http://"
	if c.cfg.LinkTLS != nil {
		scheme = "https://"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+httpAddr+"/v1/peer", nil)
	if err != nil {
		return nil, nil, errors.Join(unreachable, err)
	}
	resp, err := c.challenger.Do(req)
	if err != nil {
		return nil, nil, errors.Join(unreachable, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	t := linkTranscript{dialer: c.self, server: peer, dialerInc: c.incarnation,
		challenge: resp.Header.Get(hdrChallenge), nonce: newNonce()}
	if t.challenge == "" {
		return nil, nil, errors.Join(unreachable, fmt.Errorf("no challenge from %s (HTTP %d)", httpAddr, resp.StatusCode))
	}

	h := http.Header{}
	h.Set(hdrNode, c.self)
	h.Set(hdrIncarnation, strconv.FormatInt(c.incarnation, 10))
	h.Set(hdrChallenge, t.challenge)
	h.Set(hdrNonce, t.nonce)
	h.Set(hdrProof, c.auth.dialerProof(t))
	var conn net.Conn
	if c.cfg.LinkTLS != nil {
		conn, err = (&tls.Dialer{Config: c.cfg.LinkTLS}).DialContext(ctx, "tcp", httpAddr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", httpAddr)
	}
	if err != nil {
		return nil, nil, errors.Join(unreachable, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl) // the handshake's
	}
	br, resp, err := wsframe.ClientHandshake(conn, httpAddr, "/v1/peer", peerSubprotocol, h)
	if err != nil {
		_ = conn.Close()
		return nil, nil, errors.Join(unreachable, err)
	}
	_ = conn.SetDeadline(time.Time{})
	inc, perr := strconv.ParseInt(resp.Header.Get(hdrIncarnation), 10, 64)
	if perr == nil {
		perr = checkProof(resp.Header.Get(hdrProof), c.auth.serverProof(t, inc))
	}
	if perr != nil {
		_ = conn.Close()
		c.log.Warn("peer link refused: the peer did not prove the cluster secret", slog.String("peer", peer), slog.String("addr", httpAddr))
		return nil, nil, errors.Join(unreachable, perr)
	}
	c.markVerified(peer, inc)
	return conn, br, nil
}
