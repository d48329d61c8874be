package hooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roomd/roomd/protocol"
)

// Hooks calls a Backend for the rooms whose namespace has hooks, applying
// timeouts, failure policies, breakers and metrics, and delivers the events
// of published, occupied and vacated in order per room. It is safe for
// concurrent use. Close stops the delivery.
type Hooks struct {
	cfg Config
	be  Backend
	log *slog.Logger

	mu       sync.Mutex
	breakers map[breakerKey]*breaker

	del       *delivery
	delivered atomic.Pointer[func(Event)] // OnDelivered
}

type breakerKey struct {
	hook Name
	ns   string
}

// New validates cfg, fills its zero values and starts the delivery of
// events. A nil *Hooks (no hooks configured) is valid: every hook is off.
func New(cfg Config) (*Hooks, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	h := &Hooks{cfg: cfg, be: cfg.Backend, log: cfg.Logger, breakers: map[breakerKey]*breaker{}}
	if h.be == nil {
		h.be = NewHTTPBackend(cfg.Secret, cfg.Client, cfg.ConnectURL, func(room string) string {
			return h.namespace(room).URL
		})
	}
	h.del = newDelivery(h)
	return h, nil
}

// namespace returns the hooks of a room's namespace.
func (h *Hooks) namespace(room string) *Namespace {
	if ns, ok := h.cfg.Namespaces[protocol.Namespace(room)]; ok {
		return &ns
	}
	return &h.cfg.Default
}

// breakerNS names the breaker of a room's hooks: its namespace when the
// namespace is configured, else "" (Default's), so that clients naming
// rooms cannot make breakers (or metric labels) without bound.
func (h *Hooks) breakerNS(room string) string {
	if ns := protocol.Namespace(room); ns != "" {
		if _, ok := h.cfg.Namespaces[ns]; ok {
			return ns
		}
	}
	return ""
}

// On reports whether hook n is called for room.
func (h *Hooks) On(n Name, room string) bool {
	if h == nil {
		return false
	}
	if n == Connect {
		return h.cfg.ConnectHook
	}
	ns := h.namespace(room)
	return ns.has(n) && (ns.URL != "" || h.cfg.Backend != nil)
}

// ConnectHeaders lists the headers forwarded to connect.
func (h *Hooks) ConnectHeaders() []string { return h.cfg.ConnectHeaders }

// Connect calls the connect hook. It returns the backend's answer; nil and
// no error when the backend failed and the policy allows, or a Backend
// gave no answer (the connection is then verified as without the hook); an
// error wrapping ErrFailed when it failed and the policy denies.
func (h *Hooks) Connect(ctx context.Context, req *ConnectRequest) (*ConnectResult, error) {
	var res *ConnectResult
	err := h.call(ctx, Connect, "", h.cfg.ConnectTimeout, func(ctx context.Context) (bool, error) {
		var err error
		res, err = h.be.Connect(ctx, req)
		return res != nil && res.Allow, err
	})
	if err != nil {
		return nil, h.fail(Connect, h.cfg.ConnectPolicy, err)
	}
	return res, nil
}

// Join calls the join hook of req.Room. A failure allowed by the policy
// answers Allow; one it denies is an error wrapping ErrFailed.
func (h *Hooks) Join(ctx context.Context, req *JoinRequest) (*JoinResult, error) {
	ns := h.namespace(req.Room)
	return decide(h, ctx, Join, req.Room, ns.Timeout, ns.JoinPolicy,
		func(ctx context.Context) (*JoinResult, error) { return h.be.Join(ctx, req) },
		func(r *JoinResult) bool { return r.Allow }, &JoinResult{Allow: true})
}

// Publish calls the publish hook of req.Room, as Join.
func (h *Hooks) Publish(ctx context.Context, req *PublishRequest) (*PublishResult, error) {
	ns := h.namespace(req.Room)
	return decide(h, ctx, Publish, req.Room, ns.Timeout, ns.PublishPolicy,
		func(ctx context.Context) (*PublishResult, error) { return h.be.Publish(ctx, req) },
		func(r *PublishResult) bool { return r.Allow }, &PublishResult{Allow: true})
}

// decide runs a hook that decides about a room: the backend's answer, or,
// when it failed, allow if the policy allows (an error wrapping ErrFailed
// if it denies). No answer and no error is a failure.
func decide[R any](h *Hooks, ctx context.Context, hook Name, room string, timeout time.Duration, p Policy,
	ask func(context.Context) (*R, error), allowed func(*R) bool, allow *R) (*R, error) {
	var res *R
	err := h.call(ctx, hook, h.breakerNS(room), timeout, func(ctx context.Context) (bool, error) {
		var err error
		if res, err = ask(ctx); err == nil && res == nil {
			err = fmt.Errorf("%w: %s: no answer", ErrFailed, hook)
		}
		return err == nil && allowed(res), err
	})
	if err != nil {
		return allow, h.fail(hook, p, err)
	}
	return res, nil
}

// fail applies a policy to a failure: nil when it allows.
func (h *Hooks) fail(hook Name, p Policy, err error) error {
	h.cfg.Metrics.HookPolicy(hook, p)
	switch p {
	case PolicyAllow:
		return nil
	case PolicyAllowAndLog:
		h.log.Warn("hook failed; allowed by its policy", slog.String(logKeyHook, string(hook)), slog.Any(logKeyErr, err))
		return nil
	}
	return err
}

// call runs one call of a hook through its breaker, with its timeout, and
// observes it. allowed reports whether the answer allowed (for the outcome
// label).
func (h *Hooks) call(ctx context.Context, hook Name, ns string, timeout time.Duration, fn func(ctx context.Context) (allowed bool, err error)) error {
	done, err := h.breaker(hook, ns).allow()
	if err != nil {
		h.cfg.Metrics.HookCall(hook, "breaker_open", 0)
		return fmt.Errorf("%w: %s: %w", ErrFailed, hook, ErrBreakerOpen)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	allowed, err := fn(ctx)
	if err != nil && !errors.Is(err, ErrFailed) {
		err = fmt.Errorf("%w: %s: %w", ErrFailed, hook, err)
	}
	done(err)
	outcome := "ok"
	switch {
	case err != nil:
		outcome = "failed"
	case !allowed && hook != Published && hook != Occupied && hook != Vacated:
		outcome = "denied"
	}
	h.cfg.Metrics.HookCall(hook, outcome, time.Since(start))
	return err
}

// Close stops the delivery of events, waiting for the calls under way
// until ctx ends. Events still queued are dropped (their room's next owner
// delivers them again from its cursor). It is safe to call twice.
func (h *Hooks) Close(ctx context.Context) error {
	if h == nil {
		return nil
	}
	return h.del.close(ctx)
}

// Log keys.
const (
	logKeyHook = "hook"
	logKeyErr  = "err"
	logKeyRoom = "room"
)
