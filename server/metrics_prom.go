package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/roomd/roomd/cluster"
	"github.com/roomd/roomd/hooks"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/server/admission"
)

// Prometheus is the Metrics of a node, on its own registry (never the
// global one), served at /metrics. Names are prefixed roomd_.
type Prometheus struct {
	reg *prometheus.Registry

	conns, observers           prometheus.Gauge
	connsTotal, observersTotal prometheus.Counter
	framesIn                   *prometheus.CounterVec
	framesInByType             map[string]prometheus.Counter
	framesInOther              prometheus.Counter
	messagesIn, bytesIn        prometheus.Counter
	messagesOut, framesOut     prometheus.Counter
	bytesOut                   prometheus.Counter
	delivered                  *prometheus.CounterVec
	deliveredByKind            map[string]prometheus.Counter
	slow                       *prometheus.CounterVec
	ephDropped, rateLimited    prometheus.Counter
	tlsFailed                  prometheus.Counter
	latency                    prometheus.Histogram
	authFailures, errors, byes *prometheus.CounterVec
	api, limits                *prometheus.CounterVec
	forwarded                  *prometheus.CounterVec
	commit                     prometheus.Histogram
	groups                     *prometheus.GaugeVec
	replicaLag                 prometheus.Gauge
	leaderChanges              prometheus.Counter
	peerLinks                  prometheus.Gauge
	peerLinkDrops              prometheus.Counter
	peerLinkOversized          prometheus.Counter
	admRefused                 *prometheus.CounterVec
	admLimit, admLimitedRooms  prometheus.Gauge
	admDelay                   *prometheus.GaugeVec
	hooks                      *hookMetrics
	deflate                    *deflateMetrics
}

var (
	_ Metrics         = (*Prometheus)(nil)
	_ cluster.Metrics = (*Prometheus)(nil)
	_ hooks.Metrics   = (*Prometheus)(nil)
)

// NewPrometheus builds the metrics and their registry, with the Go runtime
// and process collectors.
func NewPrometheus() *Prometheus {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: "roomd_" + name, Help: help})
		f(c)
		return c
	}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "roomd_" + name, Help: help})
		f(g)
		return g
	}
	vec := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "roomd_" + name, Help: help}, labels)
		f(v)
		return v
	}
	p := &Prometheus{reg: reg}
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p.conns = gauge("connections", "Open WebSocket connections (after hello).")
	p.connsTotal = counter("connections_total", "WebSocket connections that said hello.")
	p.observers = gauge("sse_observers", "Open SSE streams.")
	p.observersTotal = counter("sse_observers_total", "SSE streams opened.")
	p.framesIn = vec("frames_in_total", "Inbound frames by type.", "type")
	p.framesInByType = map[string]prometheus.Counter{}
	for _, t := range []string{protocol.TypeHello, protocol.TypeJoin, protocol.TypeLeave, protocol.TypePub,
		protocol.TypePres, protocol.TypeSet, protocol.TypeAuth} {
		p.framesInByType[t] = p.framesIn.WithLabelValues(t)
	}
	p.framesInOther = p.framesIn.WithLabelValues("other")
	p.messagesIn = counter("messages_in_total", "Inbound WebSocket messages.")
	p.bytesIn = counter("bytes_in_total", "Inbound WebSocket message bytes.")
	p.messagesOut = counter("messages_out_total", "Outbound WebSocket messages and SSE writes.")
	p.framesOut = counter("frames_out_total", "Outbound frames and SSE events.")
	p.bytesOut = counter("bytes_out_total", "Outbound bytes (frames and SSE events).")
	p.delivered = vec("deliveries_total", "Events handed to a connection's or observer's queue, by kind.", "kind")
	p.deliveredByKind = map[string]prometheus.Counter{}
	for _, k := range []room.Kind{room.KindMsg, room.KindState, room.KindEph, room.KindPres, room.KindJoined, room.KindLeft} {
		p.deliveredByKind[k.String()] = p.delivered.WithLabelValues(k.String())
	}
	p.slow = vec("slow_consumer_cuts_total", "Connections and observers cut for falling behind.", "transport")
	p.ephDropped = counter("ephemeral_dropped_total", "Ephemeral frames dropped under backpressure.")
	p.tlsFailed = counter("tls_handshake_failures_total", "TLS handshakes that failed or did not finish within timeouts.handshake.")
	p.rateLimited = counter("rate_limited_total", "Inbound frames refused by a rate limit.")
	p.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "roomd_publish_to_write_seconds",
		Help:    "Time from a durable event's creation in its room to the write of the batch that carries it to a connection, observed for the oldest such event of each write.",
		Buckets: []float64{.0002, .0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})
	f(p.latency)
	p.authFailures = vec("auth_failures_total", "Refused tokens and permissions, by reason.", "reason")
	p.errors = vec("errors_total", "err frames and HTTP API errors sent, by code name.", "code")
	p.byes = vec("byes_total", "Connections closed by the server, by code name.", "code")
	p.api = vec("api_requests_total", "HTTP API requests by route and status.", "route", "status")
	p.limits = vec("limit_refusals_total", "Connections and operations refused by a node, address, connection or user limit, by limit.", "limit")
	p.forwarded = vec("forwarded_ops_total", "Room ops sent to their owner on another node, by op.", "op")
	p.commit = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "roomd_commit_seconds",
		Help:    "Time from proposing a durable room change to its commit and apply, on the leader.",
		Buckets: []float64{.0001, .00025, .0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}})
	f(p.commit)
	p.leaderChanges = counter("raft_leader_changes_total", "Partitions this node started or stopped leading.")
	p.peerLinks = gauge("peer_links", "Open links to other nodes.")
	p.groups = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "roomd_raft_groups",
		Help: "This node's replicas of partitions' raft groups, by role: led, followed, asleep (quiesced, counted in the others too)."}, []string{"role"})
	f(p.groups)
	p.replicaLag = gauge("raft_replica_lag_entries", "The most log entries a replica of a group this node leads is behind its leader.")
	p.peerLinkDrops = counter("peer_link_drops_total", "Links to other nodes lost.")
	p.peerLinkOversized = counter("peer_link_oversized_total", "Links to other nodes cut for a message over cluster.link_max_message.")
	p.admRefused = vec("admission_refusals_total", "Publishes refused with overloaded by admission, by reason: room (over its share or its own limit), publisher (over its share of its room).", "reason")
	p.admLimit = gauge("admission_limit", "The node's admission limit in publishes per second; 0 when the node is not limited.")
	p.admLimitedRooms = gauge("admission_limited_rooms", "Rooms with an admission limit of their own.")
	p.admDelay = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "roomd_admission_delay_seconds",
		Help: "Admission's measured delay over its last interval, by signal: write (median creation-to-write delay), queue (the largest of the rooms' 90th percentiles of read-to-start waits)."}, []string{"signal"})
	f(p.admDelay)
	p.hooks = newHookMetrics(f)
	p.deflate = newDeflateMetrics(counter)
	return p
}

// Registry is the registry the metrics live on.
func (p *Prometheus) Registry() *prometheus.Registry { return p.reg }

// Handler serves the registry in the Prometheus exposition format.
func (p *Prometheus) Handler() http.Handler {
	return promhttp.HandlerFor(p.reg, promhttp.HandlerOpts{Registry: p.reg})
}

// GaugeFunc registers a gauge read from fn at scrape time, for values
// owned elsewhere (rooms, members, queued bytes).
func (p *Prometheus) GaugeFunc(name, help string, fn func() float64) {
	p.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "roomd_" + name, Help: help}, fn))
}

func (p *Prometheus) ConnOpened()     { p.conns.Inc(); p.connsTotal.Inc() }
func (p *Prometheus) ConnClosed()     { p.conns.Dec() }
func (p *Prometheus) ObserverOpened() { p.observers.Inc(); p.observersTotal.Inc() }
func (p *Prometheus) ObserverClosed() { p.observers.Dec() }

func (p *Prometheus) FrameIn(t string) {
	if c, ok := p.framesInByType[t]; ok {
		c.Inc()
		return
	}
	p.framesInOther.Inc() // unknown types never become labels
}

func (p *Prometheus) MessageIn(bytes int) { p.messagesIn.Inc(); p.bytesIn.Add(float64(bytes)) }

func (p *Prometheus) MessageOut(frames, bytes int) {
	p.messagesOut.Inc()
	p.framesOut.Add(float64(frames))
	p.bytesOut.Add(float64(bytes))
}

func (p *Prometheus) Delivered(kind string) {
	if c, ok := p.deliveredByKind[kind]; ok {
		c.Inc()
	}
}

func (p *Prometheus) SlowConsumer(transport string)  { p.slow.WithLabelValues(transport).Inc() }
func (p *Prometheus) EphemeralDropped()              { p.ephDropped.Inc() }
func (p *Prometheus) TLSHandshakeFailed()            { p.tlsFailed.Inc() }
func (p *Prometheus) PublishToWrite(d time.Duration) { p.latency.Observe(d.Seconds()) }
func (p *Prometheus) AuthFailure(reason string)      { p.authFailures.WithLabelValues(reason).Inc() }
func (p *Prometheus) ErrorSent(code protocol.Code)   { p.errors.WithLabelValues(code.String()).Inc() }
func (p *Prometheus) ByeSent(code protocol.Code)     { p.byes.WithLabelValues(code.String()).Inc() }
func (p *Prometheus) RateLimited()                   { p.rateLimited.Inc() }

func (p *Prometheus) LimitRefused(limit string) { p.limits.WithLabelValues(limit).Inc() }

func (p *Prometheus) AdmissionRefused(reason string) { p.admRefused.WithLabelValues(reason).Inc() }

func (p *Prometheus) AdmissionState(st admission.State) {
	p.admLimit.Set(st.NodeLimit)
	p.admLimitedRooms.Set(float64(st.LimitedRooms))
	p.admDelay.WithLabelValues("write").Set(st.WriteDelay.Seconds())
	p.admDelay.WithLabelValues("queue").Set(st.QueueDelay.Seconds())
}

func (p *Prometheus) APIRequest(route string, status int) {
	p.api.WithLabelValues(route, strconv.Itoa(status)).Inc()
}

func (p *Prometheus) Forwarded(op string) { p.forwarded.WithLabelValues(op).Inc() }

func (p *Prometheus) Committed(d time.Duration) { p.commit.Observe(d.Seconds()) }
func (p *Prometheus) LeaderChanged()            { p.leaderChanges.Inc() }

func (p *Prometheus) Groups(led, followed, asleep int, lag uint64) {
	p.groups.WithLabelValues("led").Set(float64(led))
	p.groups.WithLabelValues("followed").Set(float64(followed))
	p.groups.WithLabelValues("asleep").Set(float64(asleep))
	p.replicaLag.Set(float64(lag))
}

func (p *Prometheus) LinkUp()   { p.peerLinks.Inc() }
func (p *Prometheus) LinkDown() { p.peerLinks.Dec(); p.peerLinkDrops.Inc() }

// LinkOversized implements cluster.Metrics.
func (p *Prometheus) LinkOversized() { p.peerLinkOversized.Inc() }
