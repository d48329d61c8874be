package main

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/roomd/roomd/hooks"
	"github.com/roomd/roomd/server"
)

// HooksConfig is the hooks section of the file (settings.go, "Hooks"); the
// per-room settings are NamespaceConfig's hook_* keys.
type HooksConfig struct {
	Secret          string   `yaml:"secret"`
	ConnectURL      string   `yaml:"connect_url"`
	ConnectTimeout  Duration `yaml:"connect_timeout"`
	ConnectPolicy   string   `yaml:"connect_policy"`
	ConnectHeaders  []string `yaml:"connect_headers"`
	BreakerFailures int      `yaml:"breaker_failures"`
	BreakerOpen     Duration `yaml:"breaker_open"`
	RetryMin        Duration `yaml:"retry_min"`
	RetryMax        Duration `yaml:"retry_max"`
	RetryAttempts   int      `yaml:"retry_attempts"`
	DeadLetterMax   int      `yaml:"dead_letter_max"`
	QueueMax        int      `yaml:"queue_max"`
}

// validateHooks checks the hook settings that the table cannot: policies,
// hook names, and a secret for any URL.
func (c *Config) validateHooks() error {
	if _, err := hooks.ParsePolicy(c.Hooks.ConnectPolicy); err != nil {
		return keyError("hooks.connect_policy", "want deny, allow or allow_and_log, got %q", c.Hooks.ConnectPolicy)
	}
	urls := c.Hooks.ConnectURL != ""
	check := func(prefix string, ns *NamespaceConfig) error {
		hn, key, err := ns.hooksNamespace()
		switch {
		case err != nil && prefix == "rooms.":
			return keyError(prefix+key, "%v", err)
		case err != nil: // a namespace's key has no flag
			return fmt.Errorf("%s%s: %w", prefix, key, err)
		}
		urls = urls || hn.URL != "" && len(hn.Hooks) > 0
		return nil
	}
	if err := check("rooms.", &c.Rooms.NamespaceConfig); err != nil {
		return err
	}
	for name, ns := range c.Namespaces {
		if err := check("namespaces."+name+".", ns); err != nil {
			return err
		}
	}
	if urls && c.Hooks.Secret == "" {
		return keyError("hooks.secret", "required when a hook URL is set")
	}
	return nil
}

// hooksNamespace converts a filled NamespaceConfig's hook keys; an error
// names the key at fault.
func (ns *NamespaceConfig) hooksNamespace() (hn hooks.Namespace, key string, err error) {
	if ns.HookURL != nil {
		hn.URL = *ns.HookURL
	}
	if ns.Hooks != nil {
		for _, h := range strings.Split(*ns.Hooks, ",") {
			h = strings.TrimSpace(h)
			if h == "" {
				continue
			}
			if n := hooks.Name(h); !n.Valid() || n == hooks.Connect {
				return hn, "hooks", fmt.Errorf("%q is not a room hook (join, publish, published, occupied, vacated)", h)
			}
			hn.Hooks = append(hn.Hooks, hooks.Name(h))
		}
	}
	if ns.HookTimeout != nil {
		hn.Timeout = time.Duration(*ns.HookTimeout)
	}
	if ns.HookJoinPolicy != nil {
		if hn.JoinPolicy, err = hooks.ParsePolicy(*ns.HookJoinPolicy); err != nil {
			return hn, "hook_join_policy", fmt.Errorf("want deny, allow or allow_and_log, got %q", *ns.HookJoinPolicy)
		}
	}
	if ns.HookPublishPolicy != nil {
		if hn.PublishPolicy, err = hooks.ParsePolicy(*ns.HookPublishPolicy); err != nil {
			return hn, "hook_publish_policy", fmt.Errorf("want deny, allow or allow_and_log, got %q", *ns.HookPublishPolicy)
		}
	}
	return hn, "", nil
}

// newHooks builds the node's hooks, or nil when no hook is on.
func (c *Config) newHooks(logger *slog.Logger, prom *server.Prometheus) (*hooks.Hooks, error) {
	var m hooks.Metrics
	if prom != nil {
		m = prom
	}
	hc, ok := c.hooksConfig(logger, m)
	if !ok {
		return nil, nil
	}
	return hooks.New(hc)
}

// hooksConfig is the hooks' configuration, or ok false when no hook is on.
func (c *Config) hooksConfig(logger *slog.Logger, m hooks.Metrics) (cfg hooks.Config, ok bool) {
	policy, _ := hooks.ParsePolicy(c.Hooks.ConnectPolicy)
	cfg = hooks.Config{
		Secret:          []byte(c.Hooks.Secret),
		ConnectURL:      c.Hooks.ConnectURL,
		ConnectTimeout:  time.Duration(c.Hooks.ConnectTimeout),
		ConnectPolicy:   policy,
		ConnectHeaders:  c.Hooks.ConnectHeaders,
		BreakerFailures: c.Hooks.BreakerFailures,
		BreakerOpen:     time.Duration(c.Hooks.BreakerOpen),
		RetryMin:        time.Duration(c.Hooks.RetryMin),
		RetryMax:        time.Duration(c.Hooks.RetryMax),
		RetryAttempts:   c.Hooks.RetryAttempts,
		DeadLetterMax:   c.Hooks.DeadLetterMax,
		QueueMax:        c.Hooks.QueueMax,
		Metrics:         m,
		Logger:          logger,
	}
	cfg.Default, _, _ = c.Rooms.hooksNamespace()
	ok = cfg.ConnectURL != "" || cfg.Default.URL != "" && len(cfg.Default.Hooks) > 0
	for name, ns := range c.Namespaces {
		hn, _, _ := ns.hooksNamespace()
		if cfg.Namespaces == nil {
			cfg.Namespaces = map[string]hooks.Namespace{}
		}
		cfg.Namespaces[name] = hn
		ok = ok || hn.URL != "" && len(hn.Hooks) > 0
	}
	return cfg, ok
}
