package hooks

import "time"

// Metrics receives the hooks' measurements. Config.Metrics nil means none
// are kept; the server's Prometheus implements it. Methods must be cheap and
// safe for concurrent use.
type Metrics interface {
	// HookCall observes one call of a hook: its outcome ("ok", "denied",
	// "failed", "breaker_open") and how long it took.
	HookCall(hook Name, outcome string, d time.Duration)
	// HookPolicy counts a failure answered by a hook's policy ("deny",
	// "allow", "allow_and_log").
	HookPolicy(hook Name, policy Policy)
	// HookBreaker reports a breaker's state change (0 closed, 1 half-open,
	// 2 open), per hook and namespace.
	HookBreaker(hook Name, namespace string, state int)
	// HookQueued reports the events waiting for delivery on this node.
	HookQueued(n int)
	// HookDeadLetters reports the size of the dead-letter store;
	// HookDeadLettered counts an event put there, HookDeadLetterDropped
	// one dropped from a full store.
	HookDeadLetters(n int)
	HookDeadLettered(hook Name)
	HookDeadLetterDropped()
}

type noopMetrics struct{}

func (noopMetrics) HookCall(Name, string, time.Duration) {}
func (noopMetrics) HookPolicy(Name, Policy)              {}
func (noopMetrics) HookBreaker(Name, string, int)        {}
func (noopMetrics) HookQueued(int)                       {}
func (noopMetrics) HookDeadLetters(int)                  {}
func (noopMetrics) HookDeadLettered(Name)                {}
func (noopMetrics) HookDeadLetterDropped()               {}
