// Package bench is roomd's load generator (roomd bench): it speaks the real
// protocol over real sockets to one or more nodes and measures what every
// subscriber receives: loss, duplicates, order, and latency from a send
// timestamp carried in each payload.
//
// Scenarios:
//
//	fanout   R rooms × N subscribers, P publishers per room, at a total rate
//	chat     R rooms × N members, every member publishes
//	connect  a connection storm (hello + join) then an idle hold
//	sse      SSE observers of R rooms while WebSocket publishers publish
//	sseidle  SSE observers of R rooms opened, then held idle (no publisher)
//	floor    no server: the bench writes to its own subscribers, one write
//	         per delivery, to measure what the kernel alone costs
//	joinstorm R rooms × N members joining within a second (JoinOver), then
//	         P publishers per room publish: latency from the first message
//	         on, and every member's presence view checked at the end
//
// The client side is built not to be the bottleneck: subscribers and SSE
// observers are read by a few epoll pollers (poll_linux.go; elsewhere, and
// for publishers and https streams, one goroutine per connection), frames
// and events are scanned in place (only t, r, s, d, id and code, or seq and
// data, are looked at), and the hot path allocates nothing.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/roomd/roomd/protocol"
)

// Scenarios lists the scenario names Run accepts.
var Scenarios = []string{"fanout", "chat", "connect", "sse", "sseidle", "floor", "joinstorm"}

// Config is one bench run. Zero values take the defaults of Defaults.
type Config struct {
	Scenario string
	URLs     []string // nodes; connection i goes to URLs[i % len]
	Rooms    int      // rooms (all scenarios)
	Subs     int      // fanout: subscribers per room; chat: members per room
	Pubs     int      // fanout, sse: publishers per room
	Rate     float64  // total messages per second, all publishers together
	Size     int      // payload bytes (a msgpack bin, header included)
	// PayloadText fills publishes' payloads after their stamp with chat-like
	// text instead of zeros (fanout, chat), for compression to work on.
	PayloadText bool
	// Deflate offers permessage-deflate on every connection; the server's
	// compressed messages are inflated, and publishes go compressed.
	Deflate bool

	Duration time.Duration // measurement window (connect: the idle hold)
	Warmup   time.Duration // publishing before the window opens
	Drain    time.Duration // longest wait for in-flight messages after it closes

	// JoinOver spreads the joinstorm members' connections evenly over this
	// time. Zero means one second.
	JoinOver time.Duration

	Conns      int     // connect: connections
	Observers  int     // sse: observers, spread over the rooms
	NonReaders float64 // fanout: percentage of subscribers that never read
	QuietRate  float64 // fanout: msg/s of one more room with Subs readers, reported apart (0: none)
	APIRate    float64 // fanout: msg/s published into the first room through the HTTP API (0: none)
	Token      string  // sent in hello (and as Bearer for SSE)
	PID        int     // server process to measure through /proc; 0: none

	// TLS dials the nodes over TLS (http:// and ws:// URLs become https://
	// and wss://) without verifying their certificate: a bench's node with
	// a self-signed one (tls.go). Its WebSocket subscribers are read in
	// goroutines, through crypto/tls, rather than by pollers.
	TLS bool

	// GoroutineReaders reads every connection in a goroutine of its own,
	// through gorilla or net/http, instead of subscribers and SSE observers
	// through pollers (epoll, one per core). Pollers cost the bench less CPU
	// per message; on a machine the bench shares with the server, that CPU
	// is the server's.
	GoroutineReaders bool
	// ReadTick is how often a poller takes what arrived while messages flow
	// (0: on every wake-up). Reported latency includes up to one tick.
	ReadTick time.Duration
	// ReadLatency measures latency when the bench reads a message, as
	// before kernel timestamps, instead of when it arrived in the
	// receiver's socket (see Result.LatencyAt).
	ReadLatency bool
	// Pollers is how many pollers read the polled connections. Zero means
	// one per core (GOMAXPROCS, at most 8): fewer made the bench and the
	// server slower on a machine they share (docs/BENCHMARKS.md, "What we
	// tried").
	Pollers int

	DialConcurrency int           // connections being opened at once
	DialTimeout     time.Duration // bound on one dial + hello + join

	// RoomPrefix names the run's rooms (PREFIX-0, PREFIX-1, ...). Empty
	// means "bench:" and a random run id, so runs never share a room.
	RoomPrefix string
	// Progress, when set, receives a live status line every second
	// (carriage-return updated: give it a terminal).
	Progress io.Writer
}

// Defaults returns the default configuration.
func Defaults() Config {
	return Config{
		Scenario: "fanout", URLs: []string{"http://127.0.0.1:8080"},
		Rooms: 1, Subs: 100, Pubs: 1, Rate: 100, Size: 100,
		Duration: 10 * time.Second, Warmup: 2 * time.Second, Drain: 3 * time.Second,
		Conns: 1000, Observers: 100,
		DialConcurrency: 16, DialTimeout: 10 * time.Second,
		ReadTick: 500 * time.Microsecond,
	}
}

func (c *Config) validate() error {
	d := Defaults()
	if c.Scenario == "" {
		c.Scenario = d.Scenario
	}
	if len(c.URLs) == 0 {
		c.URLs = d.URLs
	}
	if c.DialConcurrency <= 0 {
		c.DialConcurrency = d.DialConcurrency
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.Size == 0 {
		c.Size = d.Size
	}
	if c.TLS {
		urls := make([]string, len(c.URLs)) // the caller's slice stays as it was
		for i, u := range c.URLs {
			urls[i] = toTLS(u)
		}
		c.URLs = urls
	}
	if c.RoomPrefix == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		c.RoomPrefix = "bench:" + hex.EncodeToString(b[:])
	}
	known := false
	for _, s := range Scenarios {
		known = known || s == c.Scenario
	}
	switch {
	case !known:
		return fmt.Errorf("unknown scenario %q (want one of %s)", c.Scenario, strings.Join(Scenarios, ", "))
	case c.Rooms <= 0:
		return errors.New("--rooms must be at least 1")
	case c.Size < MinPayload || c.Size > 1<<20:
		return fmt.Errorf("--size must be between %d and %d bytes", MinPayload, 1<<20)
	case c.NonReaders < 0 || c.NonReaders > 100:
		return errors.New("--non-readers is a percentage, 0 to 100")
	case c.Duration < 0 || c.Warmup < 0 || c.Drain < 0 || c.JoinOver < 0:
		return errors.New("durations must not be negative")
	}
	if c.Scenario == "joinstorm" {
		if c.JoinOver == 0 {
			c.JoinOver = time.Second
		}
		c.Warmup = 0 // measured from the first message on
	}
	switch c.Scenario {
	case "fanout", "chat", "floor", "joinstorm":
		if c.Subs <= 0 {
			return errors.New("--subs must be at least 1")
		}
	case "connect":
		if c.Conns <= 0 {
			return errors.New("--conns must be at least 1")
		}
	case "sse", "sseidle":
		if c.Observers <= 0 {
			return errors.New("--observers must be at least 1")
		}
	}
	if c.Scenario == "floor" && (c.PID > 0 || c.NonReaders > 0) {
		return errors.New("floor runs no server: --pid and --non-readers do not apply")
	}
	if c.Scenario != "connect" && c.Scenario != "sseidle" {
		if c.Rate <= 0 {
			return errors.New("--rate must be above 0")
		}
		if c.Scenario != "chat" && c.Pubs <= 0 {
			return errors.New("--pubs must be at least 1")
		}
		if c.Duration == 0 {
			return errors.New("--duration must be above 0")
		}
	}
	return nil
}

// runner is the state of one run.
type runner struct {
	cfg   Config
	quiet *roomState // the quiet room (QuietRate), else nil
	errs  errCounter
	lat   *Histogram // receive time - send time, measured messages
	// arrival: receive times are the kernel's arrival timestamps (every
	// measuring connection is polled); readLag is read time - arrival.
	arrival  bool
	readLag  *Histogram
	connLat  *Histogram // dial to joined (or to first SSE event)
	ackLat   *Histogram // pub written to its ok read, measured pubs
	rooms    []*roomState
	pubs     []*publisher // by global id
	conns    []*wsConn
	sses     []*sseConn
	pollers  []*poller // read the polled connections (poll_linux.go)
	wsDialer *websocket.Dialer
	nrDialer *websocket.Dialer
	sse      *http.Client

	readers  sync.WaitGroup
	stopping atomic.Bool
	opened   atomic.Int64
	failed   atomic.Int64
	total    int // connections to open

	phase   atomic.Value // string, for the progress line
	rss     rssSampler
	nextURL int
}

func (r *runner) publisher(id uint32) *publisher {
	if int(id) < len(r.pubs) {
		return r.pubs[id]
	}
	return nil
}

func (r *runner) url() string {
	u := r.cfg.URLs[r.nextURL%len(r.cfg.URLs)]
	r.nextURL++
	return u
}

func (r *runner) addConn(rs *roomState, track bool, pubRate float64) *wsConn {
	c := &wsConn{r: r, idx: len(r.conns) + len(r.sses), url: r.url(), room: rs}
	if track {
		c.tr = newTracker(rs, c.idx)
	}
	if pubRate > 0 {
		p := &publisher{id: uint32(len(r.pubs)), local: len(rs.pubs), room: rs, conn: c, rate: pubRate, sentAt: sentRing(pubRate)}
		rs.pubs = append(rs.pubs, p)
		r.pubs = append(r.pubs, p)
		c.pub = p
	}
	r.conns = append(r.conns, c)
	return c
}

// A source is a connection a poller reads: a WebSocket subscriber (wsConn)
// or an SSE observer (sseConn).
type source interface {
	netConn() net.Conn // the opened connection, whose socket the poller takes
	setFD(fd int)      // the socket's duplicate, which the poller reads
	// feed handles bytes read at recvNS (nil: only what the opening read
	// ahead). A partial frame or line is kept for the next call; an error
	// ends the connection.
	feed(b []byte, recvNS int64) error
	ended(err error) // records why it ended, unless the bench ended it
}

// markPolled picks the connections pollers read: subscribers that read and
// do not publish (publishers keep their own reader, for their replies), both
// over plain http (crypto/tls and net/http keep those over TLS).
func (r *runner) markPolled() {
	if !canPoll || r.cfg.GoroutineReaders {
		return
	}
	for _, c := range r.conns {
		c.polled = c.pub == nil && !c.nonReader && !isTLS(c.url)
	}
	for _, s := range r.sses {
		s.polled = strings.HasPrefix(httpBase(s.url), "http://")
	}
	// Latency is taken at arrival only when every measuring connection
	// has its arrival times: one histogram never mixes the two.
	r.arrival = !r.cfg.ReadLatency
	for _, c := range r.conns {
		r.arrival = r.arrival && (c.tr == nil || c.polled)
	}
	for _, s := range r.sses {
		r.arrival = r.arrival && s.polled
	}
}

// startPollers starts the pollers (Config.Pollers) when any connection is
// polled.
func (r *runner) startPollers() error {
	any := false
	for _, c := range r.conns {
		any = any || c.polled
	}
	for _, s := range r.sses {
		any = any || s.polled
	}
	if !any {
		return nil
	}
	n := r.cfg.Pollers
	if n <= 0 {
		n = min(runtime.GOMAXPROCS(0), 8)
	}
	for range n {
		p, err := newPoller(r)
		if err != nil {
			r.stopPollers()
			return err
		}
		r.pollers = append(r.pollers, p)
	}
	return nil
}

// poll hands an opened connection, counted as a reader, to a poller.
func (r *runner) poll(idx int, c source) {
	r.readers.Add(1)
	if err := r.pollers[idx%len(r.pollers)].add(c); err != nil {
		c.ended(err)
		r.readers.Done()
	}
}

// stopPollers stops the pollers; their connections are done reading.
func (r *runner) stopPollers() {
	for _, p := range r.pollers {
		p.stop()
	}
	r.pollers = nil
}

// Run runs one scenario and returns its result. It stops early, with what
// it measured so far, when ctx ends.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, lat: NewHistogram(), connLat: NewHistogram(), readLag: NewHistogram(), ackLat: NewHistogram()}
	r.wsDialer = r.dialer(false)
	r.nrDialer = r.dialer(true)
	r.sse = r.sseClient()
	defer r.sse.CloseIdleConnections()
	r.phase.Store("setup")
	r.build()
	if cfg.PID > 0 {
		if _, err := procRSS(cfg.PID); err != nil {
			return nil, fmt.Errorf("--pid %d: %w", cfg.PID, err)
		}
		r.rss.start(cfg.PID)
		defer r.rss.stop()
	}
	stopProgress := r.progress()
	defer stopProgress()
	switch cfg.Scenario {
	case "connect", "sseidle":
		return r.runConnect(ctx)
	case "floor":
		return r.runFloor(ctx)
	}
	return r.runTraffic(ctx)
}

// build lays out rooms and connections.
func (r *runner) build() {
	c := &r.cfg
	for i := range c.Rooms {
		r.rooms = append(r.rooms, &roomState{idx: i, name: fmt.Sprintf("%s-%d", c.RoomPrefix, i)})
	}
	switch c.Scenario {
	case "fanout", "joinstorm":
		rate := c.Rate / float64(c.Rooms*c.Pubs)
		n := 0
		for _, rs := range r.rooms {
			for range c.Subs {
				nr := c.NonReaders > 0 && int(float64(n+1)*c.NonReaders/100) > int(float64(n)*c.NonReaders/100)
				conn := r.addConn(rs, !nr, 0)
				conn.nonReader = nr
				if c.Scenario == "joinstorm" && !nr {
					conn.pv = newPresView()
				}
				n++
			}
		}
		for _, rs := range r.rooms {
			for range c.Pubs {
				r.addConn(rs, false, rate)
			}
		}
		if c.QuietRate > 0 {
			r.addQuietRoom(c.Subs, c.QuietRate)
		}
	case "floor":
		for _, rs := range r.rooms {
			for range c.Subs {
				r.addConn(rs, true, 0)
			}
			// The room's messages, written by the bench itself (floor_linux.go).
			p := &publisher{id: uint32(len(r.pubs)), room: rs, rate: c.Rate / float64(c.Rooms)}
			rs.pubs = append(rs.pubs, p)
			r.pubs = append(r.pubs, p)
		}
	case "chat":
		rate := c.Rate / float64(c.Rooms*c.Subs)
		for _, rs := range r.rooms {
			for range c.Subs {
				r.addConn(rs, true, rate)
			}
		}
	case "connect":
		for i := range c.Conns {
			r.addConn(r.rooms[i%c.Rooms], false, 0)
		}
	case "sse", "sseidle":
		for i := range c.Observers {
			rs := r.rooms[i%c.Rooms]
			s := &sseConn{r: r, idx: len(r.conns) + len(r.sses), url: r.url(), room: rs}
			s.tr = newTracker(rs, s.idx)
			r.sses = append(r.sses, s)
		}
		if c.Scenario == "sseidle" {
			break
		}
		rate := c.Rate / float64(c.Rooms*c.Pubs)
		for _, rs := range r.rooms {
			for range c.Pubs {
				r.addConn(rs, false, rate)
			}
		}
	}
	for i, p := range r.pubs {
		p.phase = float64(i) / float64(len(r.pubs)) // spread the publishers' sends
	}
	for _, rs := range r.rooms {
		for _, t := range rs.trackers {
			t.init()
		}
	}
	r.total = len(r.conns) + len(r.sses)
	r.markPolled()
}

// openAll opens every connection (SSE observers first, then WebSocket ones
// in the order built), DialConcurrency at a time, and starts their readers.
func (r *runner) openAll(ctx context.Context) error {
	if err := r.startPollers(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var fatal atomic.Value
	jobs := make(chan func(), r.cfg.DialConcurrency)
	var wg sync.WaitGroup
	for range r.cfg.DialConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				j()
			}
		}()
	}
	send := func(j func()) bool {
		select {
		case jobs <- j:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for _, s := range r.sses {
		ok := send(func() {
			t0 := time.Now()
			if err := s.open(ctx); err != nil {
				s.tr.dead.Store(true)
				r.failed.Add(1)
				if errors.Is(err, errNoSSE) {
					fatal.Store(err)
					cancel()
				}
				return
			}
			r.connLat.Record(s.idx, time.Since(t0))
			s.tr.live.Store(true)
			r.opened.Add(1)
			if s.polled {
				r.poll(s.idx, s)
				return
			}
			r.readers.Add(1)
			go s.readLoop()
		})
		if !ok {
			break
		}
	}
	paced := time.Now()
	for i, c := range r.conns {
		if d := r.cfg.JoinOver; d > 0 && r.cfg.Scenario == "joinstorm" {
			// Connection i opens at i/n of the way through JoinOver.
			if !sleepCtx(ctx, time.Until(paced.Add(d*time.Duration(i)/time.Duration(len(r.conns))))) {
				break
			}
		}
		ok := send(func() {
			t0 := time.Now()
			if err := c.open(ctx); err != nil {
				c.dead.Store(true)
				if c.tr != nil {
					c.tr.dead.Store(true)
				}
				if c.pub != nil {
					c.pub.stopped.Store(true)
				}
				r.failed.Add(1)
				return
			}
			r.connLat.Record(c.idx, time.Since(t0))
			if c.tr != nil {
				c.tr.live.Store(true)
			}
			r.opened.Add(1)
			switch {
			case c.polled:
				r.poll(c.idx, c)
			case !c.nonReader:
				r.readers.Add(1)
				go c.readLoop()
			}
		})
		if !ok {
			break
		}
	}
	close(jobs)
	wg.Wait()
	if err, _ := fatal.Load().(error); err != nil {
		return err
	}
	return ctx.Err()
}

// teardown closes every connection and waits for the readers.
func (r *runner) teardown() {
	r.stopping.Store(true)
	r.stopPollers() // before the closes: a poller reads descriptors by number
	for _, c := range r.conns {
		c.abort()
	}
	for _, s := range r.sses {
		s.close()
	}
	r.readers.Wait()
}

// received counts the msg frames (and SSE message events) received so far by
// every connection: what the server delivered.
func (r *runner) received() int64 {
	var n int64
	for _, rs := range r.rooms {
		for _, t := range rs.trackers {
			n += t.all.Load()
		}
	}
	for _, c := range r.conns {
		n += c.echo.Load()
	}
	return n
}

func (r *runner) published() int64 {
	var n int64
	for _, p := range r.pubs {
		n += p.sent.Load()
	}
	return n
}

// settled reports whether every live tracker has every acknowledged measured
// message and every publisher has its answers.
func (r *runner) settled() bool {
	for _, p := range r.pubs {
		if !p.stopped.Load() && (p.conn == nil || !p.conn.dead.Load()) && p.measured.Load() > p.acked.Load()+p.rejected.Load() {
			return false
		}
	}
	for _, rs := range r.rooms {
		var want int64
		for _, p := range rs.pubs {
			want += p.acked.Load()
		}
		for _, t := range rs.trackers {
			if !t.dead.Load() && t.uniq.Load() < want {
				return false
			}
		}
	}
	return true
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// runTraffic runs fanout, chat and sse.
func (r *runner) runTraffic(ctx context.Context) (*Result, error) {
	c := &r.cfg
	res := &Result{Scenario: c.Scenario, Params: paramsOf(c)}
	rssBefore := r.rss.now()
	t0 := time.Now()
	r.phase.Store("connecting")
	if err := r.openAll(ctx); err != nil {
		r.teardown()
		return nil, err
	}
	res.OpenSeconds = time.Since(t0).Seconds()
	rssOpen := r.rss.now()
	if r.opened.Load() == 0 {
		r.teardown()
		return nil, fmt.Errorf("no connection could be opened (%s)", fmtErrors(r.errs.snapshot()))
	}

	start := time.Now().Add(50 * time.Millisecond)
	measure := start.Add(c.Warmup)
	stop := measure.Add(c.Duration)
	var pubs sync.WaitGroup
	for _, p := range r.pubs {
		if p.stopped.Load() {
			continue
		}
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			p.run(start, measure, stop)
		}()
	}
	var api *APIStats
	apiDone := make(chan struct{})
	if c.APIRate > 0 && c.Scenario == "fanout" {
		go func() {
			defer close(apiDone)
			api = r.apiPublishers(ctx, measure, stop)
		}()
	} else {
		close(apiDone)
	}
	r.phase.Store("warmup")
	sleepCtx(ctx, time.Until(measure))
	r.phase.Store("measuring")
	cpu0, self0, recv0 := r.serverCPU(), selfCPU(), r.received()
	mach0, _ := machineCPU()
	w0 := time.Now()
	m0 := r.scrape(ctx)
	sleepCtx(ctx, time.Until(stop))
	pubs.Wait()
	<-apiDone
	res.API = api
	res.Quiet = r.quietStats()
	r.drain(ctx)
	cpu1, self1, recv1 := r.serverCPU(), selfCPU(), r.received()
	mach1, _ := machineCPU()
	window := time.Since(w0)
	if m0 != nil {
		if m1 := r.scrape(ctx); m1 != nil {
			res.ServerLatency = serverLatency(m0.buckets, m1.buckets)
			res.ServerCounters = counterDelta(m0, m1)
		}
	}
	rssEnd := r.rss.now()

	if c.NonReaders > 0 {
		res.NonReaders = r.probeNonReaders()
	}
	if c.Scenario == "joinstorm" {
		res.Presence = r.checkPresence(ctx)
	}
	r.teardown()

	r.collect(res)
	deliveries := recv1 - recv0
	res.Client = CPUStats{CPUSeconds: (self1 - self0).Seconds(), CPUMicrosPerDelivery: microsPer(self1-self0, deliveries)}
	res.Deliveries = deliveries
	res.Machine = machineStats(window, mach1-mach0, self1-self0, cpu1-cpu0)
	res.DeliveriesPerS = float64(deliveries) / window.Seconds()
	if c.PID > 0 {
		s := &ServerStats{PID: c.PID, CPUSeconds: (cpu1 - cpu0).Seconds(), CPUMicrosPerDelivery: microsPer(cpu1-cpu0, deliveries),
			RSSBeforeBytes: rssBefore, RSSAfterOpenBytes: rssOpen, RSSEndBytes: rssEnd, RSSMaxBytes: r.rss.max()}
		if n := r.opened.Load(); n > 0 {
			s.RSSPerConnBytes = float64(rssOpen-rssBefore) / float64(n)
		}
		res.Server = s
	}
	return res, ctx.Err()
}

// drain waits, up to Drain, for every acknowledged measured message to
// reach its live readers (and every publisher's answers).
func (r *runner) drain(ctx context.Context) {
	r.phase.Store("draining")
	deadline := time.Now().Add(r.cfg.Drain)
	for time.Now().Before(deadline) && !r.settled() && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
}

// microsPer is d in microseconds per one of n (0 when n is not above 0).
func microsPer(d time.Duration, n int64) float64 {
	if n <= 0 {
		return 0
	}
	return float64(d) / float64(time.Microsecond) / float64(n)
}

// probeNonReaders reads what each non-reader was sent, to see whether the
// server cut it.
func (r *runner) probeNonReaders() *NonReaderStats {
	st := &NonReaderStats{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	// A cut connection still holds what the kernel buffered for it (up to
	// the socket buffers, megabytes on loopback) before the bye: each
	// probe reads on until 2 s pass with nothing, within 30 s for all.
	deadline := time.Now().Add(30 * time.Second)
	sem := make(chan struct{}, 64)
	for _, c := range r.conns {
		if !c.nonReader {
			continue
		}
		st.Count++
		if c.ws == nil || c.dead.Load() {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			how := c.probeCut(2*time.Second, deadline)
			mu.Lock()
			defer mu.Unlock()
			switch how {
			case "slow_consumer":
				st.CutSlowConsumer++
			case "open":
				st.StillOpen++
			default:
				st.CutOther++
			}
		}()
	}
	wg.Wait()
	return st
}

// collect fills the delivery figures of a traffic run.
func (r *runner) collect(res *Result) {
	c := &r.cfg
	secs := c.Duration.Seconds()
	for _, p := range r.pubs {
		res.Published += p.acked.Load()
		res.Rejected += p.rejected.Load()
		res.Unacked += p.measured.Load() - p.acked.Load() - p.rejected.Load()
	}
	for _, rs := range r.rooms {
		for _, t := range rs.trackers {
			if !t.live.Load() {
				continue
			}
			if t.dead.Load() {
				res.ReadersDisconnected++
			}
			for _, p := range rs.pubs {
				res.Expected += p.accepted.count()
				res.Lost += p.accepted.andNotCount(t.pubs[p.local])
			}
			res.Delivered += t.uniq.Load()
			res.Duplicates += t.dups
			res.OutOfOrder += t.ooo
			res.SeqRegressions += t.seqRegress
			res.Foreign += t.foreign
		}
	}
	res.Readers = r.countReaders()
	res.Connections = int(r.opened.Load())
	res.ConnectionsFailed = int(r.failed.Load())
	res.DurationSeconds = secs
	res.PublishedPerS = float64(res.Published) / secs
	res.ExpectedPerS = float64(res.Expected) / secs
	res.DeliveredPerS = float64(res.Delivered) / secs
	if res.Expected > 0 {
		res.DeliveredPct = 100 * float64(res.Delivered) / float64(res.Expected)
	}
	if n := res.Published + res.Rejected + res.Unacked; n > 0 {
		res.AckedPct = 100 * float64(res.Published) / float64(n)
	}
	if a := r.ackLat.Snapshot(); a.Count > 0 {
		res.AckLatency = latencyOf(a) // none in floor: no server answers
	}
	res.Latency = latencyOf(r.lat.Snapshot())
	res.LatencyAt = "read"
	if r.arrival {
		res.LatencyAt = "arrival"
		res.ReadLag = latencyOf(r.readLag.Snapshot())
	}
	res.Errors = r.errs.snapshot()
}

// countReaders counts the trackers whose connection opened.
func (r *runner) countReaders() int {
	n := 0
	for _, rs := range r.rooms {
		for _, t := range rs.trackers {
			if t.live.Load() {
				n++
			}
		}
	}
	return n
}

// runConnect opens the connections (sseidle: the observers) as fast as the
// server takes them, then holds them idle for Duration.
func (r *runner) runConnect(ctx context.Context) (*Result, error) {
	c := &r.cfg
	res := &Result{Scenario: c.Scenario, Params: paramsOf(c)}
	rssBefore := r.rss.now()
	r.phase.Store("connecting")
	cpu0, self0 := r.serverCPU(), selfCPU()
	mach0, _ := machineCPU()
	t0 := time.Now()
	err := r.openAll(ctx)
	open := time.Since(t0)
	cpu1, self1 := r.serverCPU(), selfCPU()
	mach1, _ := machineCPU()
	res.Machine = machineStats(open, mach1-mach0, self1-self0, cpu1-cpu0)
	rssOpen := r.rss.now()
	res.OpenSeconds = open.Seconds()
	if err == nil {
		r.phase.Store("holding")
		sleepCtx(ctx, c.Duration)
	}
	rssEnd := r.rss.now()
	still := 0
	for _, conn := range r.conns {
		if conn.ws != nil && !conn.dead.Load() {
			still++
		}
	}
	for _, s := range r.sses {
		if s.tr.live.Load() && !s.tr.dead.Load() {
			still++
		}
	}
	r.teardown()

	n := r.opened.Load()
	res.Connections = int(n)
	res.ConnectionsFailed = int(r.failed.Load())
	res.DurationSeconds = c.Duration.Seconds()
	res.Errors = r.errs.snapshot()
	cs := &ConnectStats{Opened: int(n), Failed: int(r.failed.Load()), StillOpen: still, Latency: latencyOf(r.connLat.Snapshot())}
	if open > 0 {
		cs.PerS = float64(n) / open.Seconds()
	}
	res.Connect = cs
	if c.PID > 0 {
		s := &ServerStats{PID: c.PID, RSSBeforeBytes: rssBefore, RSSAfterOpenBytes: rssOpen, RSSEndBytes: rssEnd, RSSMaxBytes: r.rss.max()}
		if n > 0 {
			s.RSSPerConnBytes = float64(rssOpen-rssBefore) / float64(n)
			s.RSSPerConnAfterHoldBytes = float64(rssEnd-rssBefore) / float64(n)
			s.CPUSeconds = (cpu1 - cpu0).Seconds()
			s.CPUMicrosPerConn = microsPer(cpu1-cpu0, n)
		}
		res.Server = s
	}
	if err != nil && ctx.Err() == nil {
		return res, err
	}
	return res, ctx.Err()
}

// machineStats turns CPU times over a window into cores; nil when
// /proc/stat could not be read.
func machineStats(window, machine, bench, server time.Duration) *MachineStats {
	if machine <= 0 || window <= 0 {
		return nil
	}
	cores := func(d time.Duration) float64 { return d.Seconds() / window.Seconds() }
	m := &MachineStats{Cores: runtime.NumCPU(), Busy: cores(machine), Server: cores(server), Bench: cores(bench)}
	// Ticks are read at slightly different moments: never below zero.
	m.Others = max(0, m.Busy-m.Bench-m.Server)
	return m
}

func (r *runner) serverCPU() time.Duration {
	if r.cfg.PID <= 0 {
		return 0
	}
	d, _ := procCPU(r.cfg.PID)
	return d
}

func selfCPU() time.Duration {
	d, _ := procCPU(0)
	return d
}

// progress prints a status line every second until the returned func is
// called.
func (r *runner) progress() func() {
	w := r.cfg.Progress
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		lastPub, lastRecv, last := r.published(), r.received(), time.Now()
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-t.C:
			}
			pub, recv, now := r.published(), r.received(), time.Now()
			secs := now.Sub(last).Seconds()
			fmt.Fprintf(w, "\r\033[K%s %-10s conns %d/%d  pub %.0f/s  recv %.0f/s  errors %d",
				r.cfg.Scenario, r.phase.Load(), r.opened.Load(), r.total,
				float64(pub-lastPub)/secs, float64(recv-lastRecv)/secs, r.errs.n.Load())
			lastPub, lastRecv, last = pub, recv, now
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// rssSampler samples a process's RSS every 100 ms and keeps the maximum.
type rssSampler struct {
	pid  int
	mx   atomic.Int64
	done chan struct{}
	wg   sync.WaitGroup
}

func (s *rssSampler) start(pid int) {
	s.pid = pid
	s.done = make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			s.now()
			select {
			case <-s.done:
				return
			case <-t.C:
			}
		}
	}()
}

func (s *rssSampler) stop() {
	close(s.done)
	s.wg.Wait()
}

// now samples the RSS (0 without a pid).
func (s *rssSampler) now() int64 {
	if s.pid <= 0 {
		return 0
	}
	v, err := procRSS(s.pid)
	if err != nil {
		return 0
	}
	for {
		m := s.mx.Load()
		if v <= m || s.mx.CompareAndSwap(m, v) {
			break
		}
	}
	return v
}

func (s *rssSampler) max() int64 { return s.mx.Load() }

func codeName(c int) string { return protocol.Code(c).String() }

func timeDur(ns int64) time.Duration { return time.Duration(ns) }
