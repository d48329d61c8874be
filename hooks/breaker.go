package hooks

import (
	"github.com/sony/gobreaker/v2"
)

// breaker is one hook's circuit breaker in one namespace
// (github.com/sony/gobreaker): BreakerFailures consecutive failures open it;
// after BreakerOpen it lets one call through (half-open), whose success
// closes it.
type breaker struct {
	cb *gobreaker.TwoStepCircuitBreaker[struct{}]
}

func (h *Hooks) breaker(hook Name, ns string) *breaker {
	k := breakerKey{hook, ns}
	h.mu.Lock()
	defer h.mu.Unlock()
	if b := h.breakers[k]; b != nil {
		return b
	}
	n := uint32(h.cfg.BreakerFailures)
	b := &breaker{cb: gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        string(hook) + "/" + ns,
		MaxRequests: 1,
		Timeout:     h.cfg.BreakerOpen,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= n },
		OnStateChange: func(_ string, _, to gobreaker.State) {
			h.cfg.Metrics.HookBreaker(hook, ns, breakerState(to))
		},
	})}
	h.breakers[k] = b
	return b
}

// allow asks to make a call; done reports its outcome.
func (b *breaker) allow() (done func(error), err error) {
	return b.cb.Allow()
}

func breakerState(s gobreaker.State) int {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}
