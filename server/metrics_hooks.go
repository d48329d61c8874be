package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomd/roomd/hooks"
)

// hookMetrics are the Prometheus side of hooks.Metrics.
type hookMetrics struct {
	calls        *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	policy       *prometheus.CounterVec
	breaker      *prometheus.GaugeVec
	queued       prometheus.Gauge
	deadLetters  prometheus.Gauge
	deadLettered *prometheus.CounterVec
	deadDropped  prometheus.Counter
}

func newHookMetrics(register func(prometheus.Collector)) *hookMetrics {
	m := &hookMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "roomd_hook_calls_total",
			Help: "Calls of the backend hooks, by hook and outcome (ok, denied, failed, breaker_open)."}, []string{"hook", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "roomd_hook_seconds",
			Help:    "Time of one hook call, by hook.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"hook"}),
		policy: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "roomd_hook_policy_total",
			Help: "Hook failures answered by the hook's failure policy, by hook and policy."}, []string{"hook", "policy"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "roomd_hook_breaker_state",
			Help: "State of a hook's circuit breaker per namespace: 0 closed, 1 half-open, 2 open."}, []string{"hook", "namespace"}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{Name: "roomd_hook_queued",
			Help: "Published, occupied and vacated events waiting for delivery on this node."}),
		deadLetters: prometheus.NewGauge(prometheus.GaugeOpts{Name: "roomd_hook_dead_letters",
			Help: "Events in this node's dead-letter store."}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "roomd_hook_dead_lettered_total",
			Help: "Events put in the dead-letter store, by hook."}, []string{"hook"}),
		deadDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "roomd_hook_dead_letters_dropped_total",
			Help: "Dead letters dropped from a full store (hooks.dead_letter_max)."}),
	}
	for _, c := range []prometheus.Collector{m.calls, m.latency, m.policy, m.breaker, m.queued, m.deadLetters, m.deadLettered, m.deadDropped} {
		register(c)
	}
	return m
}

// HookCall implements hooks.Metrics.
func (p *Prometheus) HookCall(h hooks.Name, outcome string, d time.Duration) {
	p.hooks.calls.WithLabelValues(string(h), outcome).Inc()
	if outcome != "breaker_open" {
		p.hooks.latency.WithLabelValues(string(h)).Observe(d.Seconds())
	}
}

// HookPolicy implements hooks.Metrics.
func (p *Prometheus) HookPolicy(h hooks.Name, policy hooks.Policy) {
	p.hooks.policy.WithLabelValues(string(h), policy.String()).Inc()
}

// HookBreaker implements hooks.Metrics.
func (p *Prometheus) HookBreaker(h hooks.Name, namespace string, state int) {
	p.hooks.breaker.WithLabelValues(string(h), namespace).Set(float64(state))
}

// HookQueued implements hooks.Metrics.
func (p *Prometheus) HookQueued(n int) { p.hooks.queued.Set(float64(n)) }

// HookDeadLetters implements hooks.Metrics.
func (p *Prometheus) HookDeadLetters(n int) { p.hooks.deadLetters.Set(float64(n)) }

// HookDeadLettered implements hooks.Metrics.
func (p *Prometheus) HookDeadLettered(h hooks.Name) {
	p.hooks.deadLettered.WithLabelValues(string(h)).Inc()
}

// HookDeadLetterDropped implements hooks.Metrics.
func (p *Prometheus) HookDeadLetterDropped() { p.hooks.deadDropped.Inc() }
