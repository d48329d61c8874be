package hooks

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Policy is what a hook does when its backend fails (is down, times out,
// answers an HTTP error or garbage, or its breaker is open). It applies to
// the hooks that decide: connect, join and publish. The hooks that report
// (published, occupied, vacated) retry, then dead-letter.
type Policy uint8

const (
	// PolicyDeny refuses: bye 501 on connect, err 6 unavailable on join
	// and publish (the client may retry). The default.
	PolicyDeny Policy = iota
	// PolicyAllow goes on as if the hook were off: a connection is
	// verified by its token, a join or publish is allowed as asked.
	PolicyAllow
	// PolicyAllowAndLog is PolicyAllow, and logs each failure at warn.
	PolicyAllowAndLog
)

var policyNames = [...]string{"deny", "allow", "allow_and_log"}

func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("policy(%d)", p)
}

// ParsePolicy reads "deny", "allow" or "allow_and_log".
func ParsePolicy(s string) (Policy, error) {
	for i, n := range policyNames {
		if s == n {
			return Policy(i), nil
		}
	}
	return 0, fmt.Errorf("hooks: policy %q is not deny, allow or allow_and_log", s)
}

// Namespace is the hooks of one namespace's rooms.
type Namespace struct {
	// URL is where the namespace's hooks are posted. Empty means none (an
	// in-process Backend needs none).
	URL string
	// Hooks are the hooks called for the namespace's rooms: join, publish,
	// published, occupied, vacated. Empty means none.
	Hooks []Name
	// Timeout bounds one call. Zero means 2 s.
	Timeout time.Duration
	// JoinPolicy and PublishPolicy apply when join or publish fails. Zero
	// means PolicyDeny.
	JoinPolicy, PublishPolicy Policy
}

func (ns *Namespace) has(n Name) bool {
	for _, h := range ns.Hooks {
		if h == n {
			return true
		}
	}
	return false
}

// Config configures Hooks. Every zero value means the default given on the
// field.
type Config struct {
	// Secret signs every request (HMAC-SHA256, header Roomd-Signature).
	// Required by HTTPBackend.
	Secret []byte
	// ConnectURL is where the connect hook is posted. Empty means no
	// connect hook (an in-process Backend: set ConnectHook).
	ConnectURL string
	// ConnectHook turns the connect hook on for an in-process Backend.
	ConnectHook bool
	// ConnectTimeout bounds a connect call. Zero means 2 s.
	ConnectTimeout time.Duration
	// ConnectPolicy applies when connect fails. Zero means PolicyDeny.
	ConnectPolicy Policy
	// ConnectHeaders are the upgrade request's headers forwarded to
	// connect (besides its cookies). Nil means none.
	ConnectHeaders []string

	// Default is the hooks of the rooms of a namespace not in Namespaces.
	Default Namespace
	// Namespaces maps a namespace (protocol.Namespace) to its hooks.
	Namespaces map[string]Namespace

	// BreakerFailures is how many consecutive failures of one hook (per
	// namespace) open its breaker: calls then fail at once for
	// BreakerOpen, after which one call tries the backend again. Zero
	// means 5.
	BreakerFailures int
	// BreakerOpen is how long an open breaker refuses calls. Zero means
	// 10 s.
	BreakerOpen time.Duration

	// RetryMin and RetryMax bound the backoff between attempts to deliver
	// a published, occupied or vacated event (doubling from RetryMin).
	// Zero means 100 ms and 10 s.
	RetryMin, RetryMax time.Duration
	// RetryAttempts is how many attempts an event gets before it goes to
	// the dead-letter store. Zero means 10.
	RetryAttempts int
	// DeadLetterMax bounds the dead-letter store; beyond, the oldest
	// entry is dropped (counted). Zero means 10,000.
	DeadLetterMax int
	// QueueMax bounds the events waiting for delivery on this node; beyond,
	// an event goes straight to the dead-letter store. Zero means 100,000.
	QueueMax int

	// Backend is what the hooks call. Nil means an HTTPBackend to the URLs
	// above, signed with Secret.
	Backend Backend
	// Client is the HTTP client of the HTTPBackend. Nil means one with
	// keep-alive connections and no overall timeout (each call has its
	// own).
	Client *http.Client
	// Metrics receives measurements. Nil means none.
	Metrics Metrics
	// Logger receives the hooks' logs. Nil means slog.Default().
	Logger *slog.Logger
}

// ErrNoSecret is returned by New for HTTP hooks without a secret.
var ErrNoSecret = errors.New("hooks: a secret is required to sign HTTP hooks")

func (c *Config) fill() error {
	for name, ns := range c.Namespaces {
		ns.fill()
		c.Namespaces[name] = ns
	}
	c.Default.fill()
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 2 * time.Second
	}
	if c.ConnectURL != "" {
		c.ConnectHook = true
	}
	setDefault(&c.BreakerFailures, 5)
	setDefault(&c.BreakerOpen, 10*time.Second)
	setDefault(&c.RetryMin, 100*time.Millisecond)
	setDefault(&c.RetryMax, 10*time.Second)
	setDefault(&c.RetryAttempts, 10)
	setDefault(&c.DeadLetterMax, 10_000)
	setDefault(&c.QueueMax, 100_000)
	if c.Metrics == nil {
		c.Metrics = noopMetrics{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Backend == nil && len(c.Secret) == 0 && c.anyURL() {
		return ErrNoSecret
	}
	for _, ns := range c.all() {
		for _, h := range ns.Hooks {
			if !h.Valid() || h == Connect {
				return fmt.Errorf("hooks: %q is not a room hook (join, publish, published, occupied, vacated)", h)
			}
		}
	}
	return nil
}

func (ns *Namespace) fill() {
	if ns.Timeout <= 0 {
		ns.Timeout = 2 * time.Second
	}
}

func (c *Config) all() []*Namespace {
	out := []*Namespace{&c.Default}
	for name := range c.Namespaces {
		ns := c.Namespaces[name]
		out = append(out, &ns)
	}
	return out
}

func (c *Config) anyURL() bool {
	if c.ConnectURL != "" {
		return true
	}
	for _, ns := range c.all() {
		if ns.URL != "" && len(ns.Hooks) > 0 {
			return true
		}
	}
	return false
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
