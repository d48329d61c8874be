package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what a run measured. Rates are per second of the measurement
// window. In the JSON form every figure a script needs is a top-level key.
type Result struct {
	Scenario string `json:"scenario"`
	Params   Params `json:"params"`

	Connections         int     `json:"connections"`
	ConnectionsFailed   int     `json:"connections_failed"`
	OpenSeconds         float64 `json:"open_s"`
	DurationSeconds     float64 `json:"duration_s"`
	Readers             int     `json:"readers"`
	ReadersDisconnected int     `json:"readers_disconnected"`

	// Measured messages the server acknowledged with ok (published),
	// refused with err (rejected), or never answered (unacked).
	Published     int64   `json:"published"`
	PublishedPerS float64 `json:"published_per_s"`
	Rejected      int64   `json:"rejected"`
	Unacked       int64   `json:"unacked"`
	// AckedPct is published ÷ (published + rejected + unacked): the ok rate.
	AckedPct float64 `json:"acked_pct"`
	// AckLatency is from a measured pub's write to the publisher's read of
	// its ok (at the bench's read, like LatencyAt "read"): what a publisher
	// waits to learn that a message is committed. An ok that comes after
	// the publisher's next 4 s of pubs is counted but not timed. Nil
	// when no ok was timed (floor: no server answers).
	AckLatency *LatencyMS `json:"ack_latency_ms,omitempty"`
	// Expected: published messages × the readers of their room.
	Expected     int64   `json:"expected"`
	ExpectedPerS float64 `json:"expected_per_s"`
	// Delivered: distinct measured messages readers received.
	Delivered     int64   `json:"delivered"`
	DeliveredPerS float64 `json:"delivered_per_s"`
	DeliveredPct  float64 `json:"delivered_pct"`
	// Lost: expected but not received by the end of the drain.
	Lost           int64 `json:"lost"`
	Duplicates     int64 `json:"duplicates"`
	OutOfOrder     int64 `json:"out_of_order"`    // by per-publisher counter
	SeqRegressions int64 `json:"seq_regressions"` // seq not above the last one seen
	Foreign        int64 `json:"foreign,omitempty"`

	// Deliveries: every msg frame the server wrote to any bench connection
	// during the window (publishers' own copies and warmup stragglers
	// included): the denominator of the CPU figures.
	Deliveries     int64   `json:"deliveries"`
	DeliveriesPerS float64 `json:"deliveries_per_s"`

	// Latency is from a message's send stamp to its arrival in the
	// receiver's socket (LatencyAt "arrival": the kernel's receive stamp,
	// when every measuring connection is read by a poller on Linux), or to
	// the bench's read of it ("read"), which adds the bench's own delay:
	// its read tick and, on a machine it shares with the server, the wait
	// for a core. ReadLag is that delay, per read, with arrival stamps.
	Latency   *LatencyMS `json:"latency_ms,omitempty"`
	LatencyAt string     `json:"latency_at,omitempty"`
	ReadLag   *LatencyMS `json:"read_lag_ms,omitempty"`
	// ServerLatency is the nodes' own publish-to-write histogram over the
	// window (from /metrics, when exposed): every delivery, not only the
	// readers'.
	ServerLatency *ServerLatencyMS `json:"server_publish_to_write_ms,omitempty"`
	// ServerCounters is the change over the window of the nodes' byes,
	// slow-consumer cuts, errors, and outbound frames and messages (their
	// ratio is the server's write batching), from /metrics.
	ServerCounters map[string]float64 `json:"server_counters,omitempty"`
	Errors         map[string]int64   `json:"errors"`

	Machine    *MachineStats   `json:"machine,omitempty"`
	Server     *ServerStats    `json:"server,omitempty"`
	Client     CPUStats        `json:"client"`
	Connect    *ConnectStats   `json:"connect,omitempty"`
	NonReaders *NonReaderStats `json:"non_readers,omitempty"`
	Floor      *FloorStats     `json:"floor,omitempty"`
	Presence   *PresenceStats  `json:"presence,omitempty"`
	// Quiet is the quiet room's publisher (--quiet-rate); API the HTTP
	// API publishes (--api-rate). The quiet room's counts are in the
	// totals above too.
	Quiet *QuietStats `json:"quiet,omitempty"`
	API   *APIStats   `json:"api,omitempty"`
	// Hooks is what the loopback hook backend saw (--hook-backend).
	Hooks *HookStats `json:"hooks,omitempty"`
}

// Params echoes the run's configuration.
type Params struct {
	URLs       []string `json:"urls"`
	Rooms      int      `json:"rooms"`
	Subs       int      `json:"subs,omitempty"`
	Pubs       int      `json:"pubs,omitempty"`
	Rate       float64  `json:"rate,omitempty"`
	Size       int      `json:"size,omitempty"`
	Duration   string   `json:"duration"`
	Warmup     string   `json:"warmup,omitempty"`
	Conns      int      `json:"conns,omitempty"`
	Observers  int      `json:"observers,omitempty"`
	NonReaders float64  `json:"non_readers,omitempty"`
	JoinOver   string   `json:"join_over,omitempty"`
	TLS        bool     `json:"tls,omitempty"`
}

func paramsOf(c *Config) Params {
	p := Params{URLs: c.URLs, Rooms: c.Rooms, Duration: c.Duration.String(), TLS: c.TLS}
	switch c.Scenario {
	case "connect":
		p.Conns = c.Conns
		return p
	case "sseidle":
		p.Observers = c.Observers
		return p
	case "sse":
		p.Observers = c.Observers
		p.Pubs = c.Pubs
	case "chat", "floor":
		p.Subs = c.Subs
	default:
		p.Subs, p.Pubs, p.NonReaders = c.Subs, c.Pubs, c.NonReaders
	}
	if c.Scenario == "joinstorm" {
		p.JoinOver = c.JoinOver.String()
	}
	p.Rate, p.Size, p.Warmup = c.Rate, c.Size, c.Warmup.String()
	return p
}

// LatencyMS is a latency distribution in milliseconds.
type LatencyMS struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

func latencyOf(s Snapshot) *LatencyMS {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return &LatencyMS{Count: s.Count, Mean: ms(s.Mean), P50: ms(s.P50), P90: ms(s.P90),
		P99: ms(s.P99), P999: ms(s.P999), Max: ms(s.Max)}
}

// ServerStats are read from /proc/PID of the server (--pid).
type ServerStats struct {
	PID int `json:"pid"`
	// CPU time over the measurement window (and drain), per delivery.
	CPUSeconds           float64 `json:"cpu_s"`
	CPUMicrosPerDelivery float64 `json:"cpu_us_per_delivery"`
	RSSBeforeBytes       int64   `json:"rss_before_bytes"`
	RSSAfterOpenBytes    int64   `json:"rss_after_open_bytes"`
	RSSEndBytes          int64   `json:"rss_end_bytes"`
	RSSMaxBytes          int64   `json:"rss_max_bytes"`
	// RSS growth from before the first connection to all opened, per
	// connection; for connect also at the end of the idle hold.
	RSSPerConnBytes          float64 `json:"rss_per_conn_bytes"`
	RSSPerConnAfterHoldBytes float64 `json:"rss_per_conn_after_hold_bytes,omitempty"`
	// connect: CPU time while the connections were opened, per connection.
	CPUMicrosPerConn float64 `json:"cpu_us_per_conn,omitempty"`
}

// MachineStats is how busy the machine's cores were over the window, in
// cores: all of it, the server (with --pid), this bench, and everything else
// (the noise of other work on a shared machine). From /proc/stat.
type MachineStats struct {
	Cores  int     `json:"cores"`
	Busy   float64 `json:"busy"`
	Server float64 `json:"server"`
	Bench  float64 `json:"bench"`
	Others float64 `json:"others"`
}

// CPUStats is the bench process's own CPU use over the window.
type CPUStats struct {
	CPUSeconds           float64 `json:"cpu_s"`
	CPUMicrosPerDelivery float64 `json:"cpu_us_per_delivery"`
}

// ConnectStats describe a connection storm.
type ConnectStats struct {
	Opened    int        `json:"opened"`
	Failed    int        `json:"failed"`
	PerS      float64    `json:"per_s"` // hello + join completed per second
	StillOpen int        `json:"still_open"`
	Latency   *LatencyMS `json:"latency_ms"` // dial to joined
}

// FloorStats is what the floor scenario's writer (the bench itself, no
// server) spent: its thread's CPU time over the window and the writes it
// made, one per delivery. CPUMicrosPerWrite is the least a server on this
// machine spends per delivery when every delivery is a write of its own.
type FloorStats struct {
	WriterCPUSeconds  float64 `json:"writer_cpu_s"`
	Writes            int64   `json:"writes"`
	CPUMicrosPerWrite float64 `json:"cpu_us_per_write"`
	WouldBlock        int64   `json:"would_block"` // writes refused: the socket was full
	FrameBytes        int     `json:"frame_bytes"` // one message as written
}

// NonReaderStats tell what became of the subscribers that never read.
type NonReaderStats struct {
	Count           int `json:"count"`
	CutSlowConsumer int `json:"cut_slow_consumer"`
	CutOther        int `json:"cut_other"`
	StillOpen       int `json:"still_open"`
}

// WriteJSON writes r as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes r for people.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := r.Params
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "  %s\t"+format+"\n", append([]any{k}, a...)...) }
	if r.Params.TLS {
		fmt.Fprintf(tw, "%s, over TLS\n", r.title())
	} else {
		fmt.Fprintf(tw, "%s\n", r.title())
	}
	if r.Floor == nil {
		row("nodes", "%s", strings.Join(p.URLs, ", "))
	}
	row("connections", "%d open, %d failed, %.2f s to open", r.Connections, r.ConnectionsFailed, r.OpenSeconds)
	opening := "hello+join" // what opening a connection is
	if r.Scenario == "sseidle" {
		opening = "stream"
	}
	if c := r.Connect; c != nil {
		row("connect rate", "%.0f %s/s", c.PerS, opening)
		row("connect ms", "%s", fmtLatency(c.Latency))
		row("after hold", "%d of %d still open after %s", c.StillOpen, c.Opened, p.Duration)
	} else {
		row("published", "%.1f/s  (%d acknowledged, %d rejected, %d unanswered; asked %.1f/s)",
			r.PublishedPerS, r.Published, r.Rejected, r.Unacked, p.Rate)
		if q := r.Quiet; q != nil {
			row("quiet room", "%d acknowledged, %d rejected, %d unanswered  (its publisher at %.1f/s)", q.Published, q.Rejected, q.Unacked, q.Rate)
		}
		if a := r.API; a != nil {
			row("API publishes", "%d sent: %d ok, %d refused with Retry-After, %d refused without, %d other, %d unanswered; longest %.1f ms  (asked %.1f/s)",
				a.Sent, a.OK, a.Refused, a.NoRetryAfter, a.Other, a.Failed, a.MaxMS, a.Rate)
		}
		if r.Floor == nil {
			row("publish→ok ms", "%s  (write of a pub to the read of its ok; ok rate %.2f %%)", fmtLatency(r.AckLatency), r.AckedPct)
		}
		row("expected", "%.1f/s  (%d = published × %d readers' rooms)", r.ExpectedPerS, r.Expected, r.Readers)
		row("delivered", "%.1f/s  %.2f %%", r.DeliveredPerS, r.DeliveredPct)
		row("lost", "%d", r.Lost)
		row("duplicates", "%d", r.Duplicates)
		row("out of order", "%d  (seq regressions %d)", r.OutOfOrder, r.SeqRegressions)
		if r.ReadersDisconnected > 0 {
			row("readers cut", "%d of %d", r.ReadersDisconnected, r.Readers)
		}
		row("latency ms", "%s", fmtLatency(r.Latency))
		if r.LatencyAt == "arrival" {
			row("", "(send to arrival in the receiver's socket; --read-latency: to the bench's read)")
			if l := r.ReadLag; l != nil {
				row("read lag ms", "%s  (the bench's read after arrival)", fmtLatency(l))
			}
		}
		if l := r.ServerLatency; l != nil && l.Count > 0 {
			row("server p→w ms", "p50 ≤%s  p90 ≤%s  p99 ≤%s  p99.9 ≤%s  (roomd_publish_to_write_seconds, n=%d)",
				fmtLE(l.P50), fmtLE(l.P90), fmtLE(l.P99), fmtLE(l.P999), l.Count)
		}
		if ps := r.Presence; ps != nil {
			row("presence", "%d of %d members' views equal the room's (%.0f ms after the end); %d pres frames naming %d entries",
				ps.Matching, ps.Members, ps.SettledMS, ps.Frames, ps.Entries)
		}
		if n := r.NonReaders; n != nil {
			row("non-readers", "%d: %d cut with slow_consumer, %d cut otherwise, %d still open",
				n.Count, n.CutSlowConsumer, n.CutOther, n.StillOpen)
		}
		row("deliveries", "%.0f/s to all bench connections", r.DeliveriesPerS)
		if h := r.Hooks; h != nil {
			row("hook calls", "%s  (loopback backend; %d bad signatures)", fmtCalls(h.Calls), h.BadSignatures)
			row("published hook", "%d events, %.1f/s; %d duplicates, %d out of order", h.Published, h.PublishedPerS, h.Duplicates, h.OutOfOrder)
			row("commit→hook ms", "%s  (an event's ts, in ms, to its arrival at the backend)", fmtLatency(h.Delivery))
		}
		if c := r.ServerCounters; c != nil {
			if w := c["roomd_messages_out_total"]; w > 0 {
				row("server writes", "%.0f/s, %.2f frames per write", w/r.DurationSeconds, c["roomd_frames_out_total"]/w)
			}
			var other []string
			for k, v := range c {
				if k != "roomd_messages_out_total" && k != "roomd_frames_out_total" {
					other = append(other, fmt.Sprintf("%s %.0f", strings.TrimPrefix(k, "roomd_"), v))
				}
			}
			if len(other) > 0 {
				sort.Strings(other)
				row("server counted", "%s", strings.Join(other, ", "))
			}
		}
	}
	if f := r.Floor; f != nil {
		row("writer CPU", "%.2f s = %.2f µs per write  (%d writes of %d B, %d refused: socket full)",
			f.WriterCPUSeconds, f.CPUMicrosPerWrite, f.Writes, f.FrameBytes, f.WouldBlock)
		row("", "(the least a server on this machine spends per delivery when each is a write of its own)")
	}
	if s := r.Server; s != nil {
		if r.Connect == nil {
			row("server CPU", "%.2f s = %.2f µs per delivery  (pid %d)", s.CPUSeconds, s.CPUMicrosPerDelivery, s.PID)
		} else {
			row("server CPU", "%.2f s while opening = %.0f µs per %s  (pid %d)", s.CPUSeconds, s.CPUMicrosPerConn, opening, s.PID)
		}
		row("server RSS", "%s before, %s opened, %s end, %s max", mib(s.RSSBeforeBytes), mib(s.RSSAfterOpenBytes), mib(s.RSSEndBytes), mib(s.RSSMaxBytes))
		if r.Connect != nil {
			row("RSS/conn", "%.0f B after connect, %.0f B after hold", s.RSSPerConnBytes, s.RSSPerConnAfterHoldBytes)
		} else {
			row("RSS/conn", "%.0f B", s.RSSPerConnBytes)
		}
	}
	if r.Connect == nil {
		whose := ""
		if r.Floor != nil {
			whose = "  (its readers; the writer above)"
		}
		row("bench CPU", "%.2f s = %.2f µs per delivery%s", r.Client.CPUSeconds, r.Client.CPUMicrosPerDelivery, whose)
	}
	if m := r.Machine; m != nil {
		when, server := "over the window", "server"
		if r.Connect != nil {
			when = "while opening"
		}
		if r.Floor != nil {
			server = "writer"
		}
		row("machine", "%.2f of %d cores busy %s: %s %.2f, bench %.2f, others %.2f", m.Busy, m.Cores, when, server, m.Server, m.Bench, m.Others)
	}
	row("errors", "%s", fmtErrors(r.Errors))
	return tw.Flush()
}

func (r *Result) title() string {
	p := r.Params
	switch r.Scenario {
	case "connect":
		return fmt.Sprintf("connect: %d connections over %d rooms, held %s", p.Conns, p.Rooms, p.Duration)
	case "chat":
		return fmt.Sprintf("chat: %d rooms × %d members, %.0f msg/s in all, %d B, %s (+%s warmup)", p.Rooms, p.Subs, p.Rate, p.Size, p.Duration, p.Warmup)
	case "floor":
		return fmt.Sprintf("floor (no server: the bench writes, one write per delivery): %d room(s) × %d subscribers, %.0f msg/s in all, %d B, %s (+%s warmup)", p.Rooms, p.Subs, p.Rate, p.Size, p.Duration, p.Warmup)
	case "joinstorm":
		return fmt.Sprintf("joinstorm: %d room(s) × %d members joining over %s, then %d publisher(s)/room, %.0f msg/s in all, %d B, %s (measured from the first message)",
			p.Rooms, p.Subs, p.JoinOver, p.Pubs, p.Rate, p.Size, p.Duration)
	case "sseidle":
		return fmt.Sprintf("sseidle: %d SSE observers over %d rooms, held %s", p.Observers, p.Rooms, p.Duration)
	case "sse":
		return fmt.Sprintf("sse: %d observers over %d rooms, %d publisher(s)/room, %.0f msg/s in all, %d B, %s (+%s warmup)", p.Observers, p.Rooms, p.Pubs, p.Rate, p.Size, p.Duration, p.Warmup)
	}
	s := fmt.Sprintf("fanout: %d room(s) × %d subscribers, %d publisher(s)/room, %.0f msg/s in all, %d B, %s (+%s warmup)", p.Rooms, p.Subs, p.Pubs, p.Rate, p.Size, p.Duration, p.Warmup)
	if p.NonReaders > 0 {
		s += fmt.Sprintf(", %.0f %% non-readers", p.NonReaders)
	}
	return s
}

func fmtLatency(l *LatencyMS) string {
	if l == nil || l.Count == 0 {
		return "none recorded"
	}
	return fmt.Sprintf("p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  (n=%d)", l.P50, l.P90, l.P99, l.P999, l.Max, l.Count)
}

func fmtErrors(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func fmtLE(v float64) string {
	if v < 0 {
		return "∞"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func fmtCalls(m map[string]int64) string {
	var out []string
	for h, n := range m {
		out = append(out, fmt.Sprintf("%s %d", h, n))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
