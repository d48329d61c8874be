package main

import (
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/roomd/roomd/hooks"
)

func TestHooksSettings(t *testing.T) {
	file := writeFile(t, "roomd.yaml", `
hooks:
  secret: s3cret
  connect_url: http://127.0.0.1:9/connect
  connect_policy: allow_and_log
  connect_headers: [X-App]
  retry_attempts: 3
rooms:
  hook_url: http://127.0.0.1:9/hooks
  hooks: published
namespaces:
  chat:
    hooks: join, publish, published, occupied, vacated
    hook_publish_policy: allow
    hook_timeout: 500ms
  plain:
    hook_url: ""
`)
	c := mustLoad(t, sources{file: file})
	hc, ok := c.hooksConfig(slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if !ok || string(hc.Secret) != "s3cret" || hc.ConnectURL != "http://127.0.0.1:9/connect" || hc.ConnectPolicy != hooks.PolicyAllowAndLog ||
		!slices.Equal(hc.ConnectHeaders, []string{"X-App"}) || hc.RetryAttempts != 3 || hc.BreakerFailures != 5 || hc.ConnectTimeout != 2*time.Second {
		t.Fatalf("hooks config %+v", hc)
	}
	if d := hc.Default; d.URL != "http://127.0.0.1:9/hooks" || !slices.Equal(d.Hooks, []hooks.Name{hooks.Published}) ||
		d.Timeout != 2*time.Second || d.JoinPolicy != hooks.PolicyDeny {
		t.Fatalf("default %+v", d)
	}
	chat := hc.Namespaces["chat"]
	if chat.URL != "http://127.0.0.1:9/hooks" || len(chat.Hooks) != 5 || chat.PublishPolicy != hooks.PolicyAllow || chat.Timeout != 500*time.Millisecond {
		t.Fatalf("chat %+v", chat)
	}
	if plain := hc.Namespaces["plain"]; plain.URL != "" {
		t.Fatalf("plain %+v", plain)
	}
	h, err := hooks.New(hc)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(t.Context())
	if !h.On(hooks.Join, "chat:1") || h.On(hooks.Join, "other") || !h.On(hooks.Published, "other") || h.On(hooks.Published, "plain:1") {
		t.Fatal("hooks on the wrong rooms")
	}

	for _, tc := range []struct{ yaml, want string }{
		{"hooks: {connect_policy: maybe}", `hooks.connect_policy (--hooks-connect-policy): want deny, allow or allow_and_log, got "maybe"`},
		{"rooms: {hook_join_policy: never}", `rooms.hook_join_policy (--hook-join-policy): want deny, allow or allow_and_log, got "never"`},
		{"namespaces: {chat: {hooks: 'join,connect'}}", `namespaces.chat.hooks: "connect" is not a room hook`},
		{"rooms: {hook_url: 'http://x', hooks: join}", "hooks.secret (--hooks-secret): required when a hook URL is set"},
		{"hooks: {connect_url: 'http://x'}", "hooks.secret (--hooks-secret): required when a hook URL is set"},
		{"hooks: {retry_attempts: -1}", "hooks.retry_attempts (--hooks-retry-attempts): must not be negative"},
	} {
		_, err := loadConfig(sources{file: writeFile(t, "c.yaml", tc.yaml)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant …%s…", tc.yaml, err, tc.want)
		}
	}
	// No URL: no hooks.
	if _, ok := mustLoad(t, sources{}).hooksConfig(nil, nil); ok {
		t.Fatal("hooks on without a URL")
	}
}
