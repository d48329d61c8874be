package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/testutil"
	"github.com/roomd/roomd/room"
)

// mapEnv is an environment for Load.
func mapEnv(m map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

func mustLoad(t *testing.T, src Sources) *Config {
	t.Helper()
	c, err := Load(src)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	c := mustLoad(t, Sources{})
	sc := c.ServerConfig()
	for name, got := range map[string]any{
		"listen":         c.Listen,
		"shutdown_grace": c.ShutdownGrace,
		"log.level":      c.Log.Level,
		"leeway":         c.Auth.Leeway,
		"max_pending":    sc.MaxPending,
		"max_conns":      sc.MaxConns,
		"frame_rate":     sc.FrameRate,
		"frame_burst":    sc.FrameBurst,
		"queue":          sc.QueueMaxBytes,
		"sse_queue":      sc.SSEQueueMaxBytes,
		"unsent":         sc.SocketUnsentBytes,
		"max_body":       sc.MaxBodyBytes,
		"ping":           sc.PingInterval,
		"read_buffer":    sc.ReadBufferSize,
		"park_after":     sc.ParkAfter,
		"pending_addr":   sc.MaxPendingPerAddr,
		"rate_addr":      sc.ConnRatePerAddr,
		"ops":            sc.MaxOpsInFlight,
	} {
		want := map[string]any{
			"listen":         ":8080",
			"shutdown_grace": Duration(10 * time.Second),
			"log.level":      "info",
			"leeway":         Duration(5 * time.Second),
			"max_pending":    1024,
			"max_conns":      0,
			"frame_rate":     200.0,
			"frame_burst":    400,
			"queue":          1 << 20,
			"sse_queue":      1 << 20,
			"unsent":         128 << 10,
			"max_body":       256 << 10,
			"ping":           25 * time.Second,
			"read_buffer":    1 << 10,
			"park_after":     10 * time.Second,
			"pending_addr":   32,
			"rate_addr":      20.0,
			"ops":            64,
		}[name]
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if !c.Dev() {
		t.Error("no key configured, yet not dev mode")
	}
	// The room defaults are the room package's: filling an empty
	// room.Config gives the same settings.
	m, err := room.New(room.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got, want := c.RoomConfig().Default, m.Settings("any:room"); got != want {
		t.Errorf("room defaults\n got %+v\nwant %+v", got, want)
	}
	rc := c.RoomConfig()
	if rc.PresenceGrace != room.DefaultPresenceGrace || rc.DedupeWindow != room.MinDedupeWindow || rc.DedupeMaxKeys != room.DefaultDedupeMaxKeys ||
		rc.MaxRooms != room.DefaultMaxRooms || rc.MaxStateBytes != room.DefaultMaxStateBytes || rc.CreateRate != room.DefaultCreateRate || rc.CreateBurst != 0 {
		t.Errorf("room manager settings %+v", rc)
	}
}

func TestPrecedence(t *testing.T) {
	file := testutil.WriteFile(t, "roomd.yaml", `
listen: "127.0.0.1:7000"
node_name: from-file
auth:
  jwt_secrets: [file-secret-1, file-secret-2]
  issuer: file-issuer
api_keys: [file-key]
limits:
  max_conns: 10
  max_pending: 100
  frame_rate: 50
rooms:
  history_size: 300
`)
	env := mapEnv(map[string]string{
		"ROOMD_MAX_PENDING":    "200",
		"ROOMD_FRAME_RATE":     "60",
		"ROOMD_JWT_SECRET":     "env-secret-1, env-secret-2,",
		"ROOMD_ALLOWED_ORIGIN": "https://a.example,https://b.example",
		"ROOMD_NODE_NAME":      "", // empty: not set
		"ROOMD_HISTORY_SIZE":   "400",
	})
	flags := []FlagValue{
		{"frame-rate", "70"},
		{"api-key", "flag-key-1"},
		{"api-key", "flag-key-2"},
		{"history-size", "450"},
		{"history-size", "500"}, // a repeated scalar: the last wins
	}
	c := mustLoad(t, Sources{File: file, Env: env, Flags: flags})
	check := func(name string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("listen (file)", c.Listen, "127.0.0.1:7000")
	check("node_name (file; empty env ignored)", c.NodeName, "from-file")
	check("max_conns (file)", c.Limits.MaxConns, 10)
	check("max_pending (env over file)", c.Limits.MaxPending, 200)
	check("frame_rate (flag over env over file)", c.Limits.FrameRate, 70.0)
	check("frame_burst (derived from the final rate)", c.Limits.FrameBurst, 140)
	check("jwt_secrets (env list replaces file list)", c.Auth.JWTSecrets, []string{"env-secret-1", "env-secret-2"})
	check("issuer (file)", c.Auth.Issuer, "file-issuer")
	check("api_keys (flags replace file)", c.APIKeys, []string{"flag-key-1", "flag-key-2"})
	check("allowed_origins (env)", c.AllowedOrigins, []string{"https://a.example", "https://b.example"})
	check("history_size (flag)", *c.Rooms.HistorySize, 500)
	if c.Dev() {
		t.Error("secrets configured, yet dev mode")
	}
}

func TestConfigFileFromEnvAndFlag(t *testing.T) {
	a := testutil.WriteFile(t, "a.yaml", "node_name: a\n")
	b := testutil.WriteFile(t, "b.yaml", "node_name: b\n")
	t.Setenv("ROOMD_CONFIG", a)
	t.Setenv("ROOMD_MAX_CONNS", "7")
	c := mustLoad(t, Sources{File: File(nil, OSEnv), Env: OSEnv})
	if c.NodeName != "a" || c.Limits.MaxConns != 7 {
		t.Fatalf("ROOMD_CONFIG: node %q, max_conns %d", c.NodeName, c.Limits.MaxConns)
	}
	flags := []FlagValue{{"config", b}}
	c = mustLoad(t, Sources{File: File(flags, OSEnv), Env: OSEnv, Flags: flags})
	if c.NodeName != "b" {
		t.Fatalf("--config over ROOMD_CONFIG: node %q", c.NodeName)
	}
}

func TestNamespaces(t *testing.T) {
	file := testutil.WriteFile(t, "roomd.yaml", `
rooms:
  history_size: 500
  history_ttl: 1h
  presence: false
  max_members: 100
namespaces:
  chat: {history_size: 200, presence: true, max_members: 50, publish_rate: 10, api_publish_only: true, room_publish_rate: 25}
  board:
    history_ttl: 5m
    max_payload_bytes: 8KiB
    max_members: 0
  feed:
`)
	c := mustLoad(t, Sources{File: file})
	rc := c.RoomConfig()
	chat, board, feed := rc.Namespaces["chat"], rc.Namespaces["board"], rc.Namespaces["feed"]
	want := room.Namespace{
		HistorySize: 200, HistoryTTL: time.Hour, IdleTTL: time.Hour, NoPresence: false,
		MaxMembers: 50, MaxMessageBytes: 64 << 10, MaxPresenceBytes: 1 << 10,
		StateMaxKeys: 10000, StateMaxBytes: 4 << 20, StateMaxValueBytes: 64 << 10,
		APIPublishOnly: true, PublishRate: 10, PublishBurst: 20, RoomPublishRate: 25, RoomPublishBurst: 3,
	}
	if chat != want {
		t.Errorf("chat\n got %+v\nwant %+v", chat, want)
	}
	// Left-out keys come from rooms; idle_ttl follows the namespace's own
	// history_ttl; state_max_value_bytes its own max_payload_bytes; an
	// explicit 0 is the built-in default (no member limit).
	if board.HistorySize != 500 || board.HistoryTTL != 5*time.Minute || board.IdleTTL != 5*time.Minute ||
		!board.NoPresence || board.MaxMessageBytes != 8<<10 || board.StateMaxValueBytes != 8<<10 || board.MaxMembers != 0 {
		t.Errorf("board %+v", board)
	}
	if feed.HistorySize != 500 || !feed.NoPresence || feed.MaxMembers != 100 {
		t.Errorf("feed (all inherited) %+v", feed)
	}
	if rc.Default.HistorySize != 500 || !rc.Default.NoPresence || rc.Default.MaxMembers != 100 {
		t.Errorf("default %+v", rc.Default)
	}
	// The room manager takes them as they are.
	m, err := room.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for name, ns := range rc.Namespaces {
		if got := m.Settings(name + ":1"); got != ns {
			t.Errorf("%s: manager has %+v, config %+v", name, got, ns)
		}
	}
}

func TestSizesAndDurations(t *testing.T) {
	for in, want := range map[string]int{
		"65536": 65536, "64KiB": 64 << 10, "1MiB": 1 << 20, "2 MiB": 2 << 20, "1GiB": 1 << 30,
		"2KB": 2000, "3MB": 3_000_000, "100B": 100, "0": 0,
	} {
		c := mustLoad(t, Sources{Flags: []FlagValue{{"queue-max-bytes", in}}})
		if int(c.Limits.QueueMaxBytes) != want && want != 0 {
			t.Errorf("size %q = %d, want %d", in, c.Limits.QueueMaxBytes, want)
		}
	}
	for in, want := range map[string]time.Duration{
		"25s": 25 * time.Second, "1m30s": 90 * time.Second, "500ms": 500 * time.Millisecond, "2h": 2 * time.Hour,
	} {
		file := testutil.WriteFile(t, "d.yaml", "timeouts:\n  ping_interval: "+in+"\n")
		c := mustLoad(t, Sources{File: file})
		if time.Duration(c.Timeouts.PingInterval) != want {
			t.Errorf("duration %q = %v, want %v", in, c.Timeouts.PingInterval, want)
		}
	}
	// Printed back the way they are read.
	for d, want := range map[time.Duration]string{10 * time.Minute: "10m", time.Hour: "1h", 90 * time.Second: "1m30s", 2*time.Hour + time.Minute: "2h1m", 500 * time.Millisecond: "500ms"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[int]string{64 << 10: "64KiB", 1 << 20: "1MiB", 1000: "1000", 0: "0"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestBadFiles(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"limits:\n  max_con: 3\n", `:2: limits.max_con: unknown key (did you mean "max_conns"?)`},
		{"lisen: x\n", `:1: lisen: unknown key (did you mean "listen"?)`},
		{"zzz: 1\n", `:1: zzz: unknown key (known here: listen,`},
		{"namespaces:\n  chat:\n    histroy_size: 3\n", `:3: namespaces.chat.histroy_size: unknown key (did you mean "history_size"?)`},
		{"namespaces:\n  chat:\n    presence_grace: 3s\n", `namespaces.chat.presence_grace: unknown key`},
		{"listen: a\nlisten: b\n", `:2: listen: key given twice`},
		{"limits:\n  max_conns: x\n", `:2: limits.max_conns: invalid integer "x"`},
		{"limits: [1, 2]\n", `:1: limits: want a mapping of keys, got a list`},
		{"listen: [a]\n", `:1: listen: want a single value, got a list`},
		{"limits:\n  max_message_bytes: 64XB\n", `limits.max_message_bytes: invalid size "64XB"`},
		{"timeouts:\n  hello: 10\n", `timeouts.hello: invalid duration "10"`},
		{"rooms:\n  presence: maybe\n", `rooms.presence: invalid boolean "maybe"`},
		{"limits:\n  frame_rate: .nan\n", `limits.frame_rate: invalid number`},
		{"api_keys: [{a: b}]\n", `api_keys: entry 1: want a string, got a mapping`},
		{"namespaces: [chat]\n", `namespaces: want a mapping of namespace names`},
		{"listen: 'unterminated\n", `yaml:`},
	} {
		file := testutil.WriteFile(t, "bad.yaml", tc.yaml)
		_, err := Load(Sources{File: file})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant …%s…", tc.yaml, err, tc.want)
		}
	}
}

func TestInvalidValues(t *testing.T) {
	for _, tc := range []struct {
		yaml  string
		flags []FlagValue
		env   map[string]string
		want  string
	}{
		{yaml: "limits: {max_conns: -1}", want: "limits.max_conns (--max-conns): must not be negative, got -1"},
		{flags: []FlagValue{{"ping-interval", "-1s"}}, want: "timeouts.ping_interval (--ping-interval): must not be negative, got -1s"},
		{flags: []FlagValue{{"frame-rate", "-5"}}, want: "limits.frame_rate (--frame-rate): must not be negative"},
		{yaml: "namespaces: {chat: {max_members: -2}}", want: "namespaces.chat.max_members: must not be negative, got -2"},
		{flags: []FlagValue{{"presence-window", "6s"}}, want: "rooms.presence_window (--presence-window): must be at most 5s, got 6s"},
		{yaml: "rooms: {presence_window_max: 1m}", want: "rooms.presence_window_max (--presence-window-max): must be at most 5s, got 1m"},
		{yaml: "rooms: {presence_large: -1}", want: "rooms.presence_large (--presence-large): must not be negative"},
		{yaml: "rooms: {publish_rate: -1}", want: "rooms.publish_rate (--publish-rate): must not be negative"},
		{yaml: "namespaces: {chat: {room_publish_burst: -2}}", want: "namespaces.chat.room_publish_burst: must not be negative"},
		{yaml: "namespaces: {'a:b': {}}", want: `namespaces: "a:b" is not a namespace name`},
		{yaml: "namespaces: {'a b': {}}", want: `namespaces: "a b" is not a namespace name`},
		{yaml: "listen: nonsense", want: `listen (--addr): want host:port`},
		{yaml: "log: {format: xml}", want: `log.format (--log-format): want text or json, got "xml"`},
		{yaml: "log: {level: loud}", want: `log.level (--log-level): want debug, info, warn or error, got "loud"`},
		{yaml: "tls: {cert: c.pem}", want: "tls.cert (--tls-cert) and tls.key (--tls-key) go together"},
		{yaml: "auth: {jwt_secrets: ['', x]}", want: "auth.jwt_secrets (--jwt-secret): entry 1 is empty"},
		{yaml: "api_keys: ['  ']", want: "api_keys (--api-key): entry 1 is empty"},
		{yaml: "allowed_origins: [example.com]", want: `allowed_origins (--allowed-origin): "example.com" is not an origin`},
		{yaml: "allowed_origins: ['https://a.example/path']", want: `"https://a.example/path" is not an origin`},
		{yaml: "rooms: {dedupe_window: 1m}", want: "rooms.dedupe_window (--dedupe-window): must be at least 5m, got 1m"},
		{yaml: "trusted_proxies: [10.0.0.0/8, proxy.example]", want: `trusted_proxies (--trusted-proxy): "proxy.example" is neither a CIDR nor an IP address`},
		{env: map[string]string{"ROOMD_MAX_CONNS": "many"}, want: `ROOMD_MAX_CONNS: invalid integer "many"`},
		{flags: []FlagValue{{"byte-rate", "3GiB"}}, want: `--byte-rate: invalid size "3GiB"`},
	} {
		src := Sources{Flags: tc.flags, Env: mapEnv(tc.env)}
		if tc.yaml != "" {
			src.File = testutil.WriteFile(t, "c.yaml", tc.yaml)
		}
		_, err := Load(src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v:\n got %v\nwant …%s…", tc, err, tc.want)
		}
	}
	// Negative presence grace and leeway mean "none" and are accepted.
	c := mustLoad(t, Sources{Flags: []FlagValue{{"presence-grace", "-1s"}, {"jwt-leeway", "-1s"}}})
	if c.RoomConfig().PresenceGrace >= 0 || c.AuthConfig().Leeway >= 0 {
		t.Errorf("negative grace/leeway not kept: %v %v", c.Rooms.PresenceGrace, c.Auth.Leeway)
	}
}

// Every key of Config is in the settings table, and the other way round.
func TestSettingsCoverConfig(t *testing.T) {
	var walk func(v reflect.Value, prefix string) []string
	walk = func(v reflect.Value, prefix string) []string {
		var keys []string
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			fv := v.Field(i)
			switch {
			case opts == "inline":
				keys = append(keys, walk(fv, prefix)...)
			case name == "namespaces":
			case fv.Kind() == reflect.Struct && fv.Type() != durationType:
				keys = append(keys, walk(fv, joinKey(prefix, name))...)
			default:
				keys = append(keys, joinKey(prefix, name))
			}
		}
		return keys
	}
	seen := map[string]bool{}
	for _, k := range walk(reflect.ValueOf(Config{}), "") {
		if settingByPath(k) == nil {
			t.Errorf("Config key %s is not in the settings table", k)
		}
		seen[k] = true
	}
	flags := map[string]bool{}
	for _, s := range settings {
		if !seen[s.path()] {
			t.Errorf("setting %s is not a key of Config", s.path())
		}
		if s.flag != "" && flags[s.flag] {
			t.Errorf("flag --%s used twice", s.flag)
		}
		flags[s.flag] = true
	}
}

func TestTrustedProxies(t *testing.T) {
	c := mustLoad(t, Sources{Flags: []FlagValue{{"trusted-proxy", "10.0.0.0/8, 192.0.2.7"}, {"trusted-proxy", "fd00::/8"}}})
	got := fmt.Sprint(c.ServerConfig().TrustedProxies)
	if want := "[10.0.0.0/8 192.0.2.7/32 fd00::/8]"; got != want {
		t.Errorf("trusted proxies %s, want %s", got, want)
	}
}

// PrintFlags lists every setting: its flag, variable and key.
func TestPrintFlagsListsEverySetting(t *testing.T) {
	var b strings.Builder
	PrintFlags(&b)
	out := b.String()
	for _, s := range settings {
		if s.flag == "" {
			continue
		}
		for _, want := range []string{"--" + s.flag, EnvName(s.flag), "key " + s.path()} {
			if !strings.Contains(out, want) {
				t.Errorf("the settings' help lacks %q", want)
			}
		}
	}
}

// docs/OPERATIONS.md documents every setting: its key, flag and variable.
func TestOperationsDocCoversSettings(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "OPERATIONS.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		for _, want := range []string{"`" + s.path() + "`", "`--" + s.flag + "`", "`" + EnvName(s.flag) + "`"} {
			if !bytes.Contains(doc, []byte(want)) {
				t.Errorf("docs/OPERATIONS.md does not mention %s", want)
			}
		}
	}
	for _, want := range []string{"## 10. Metrics", "X-Accel-Buffering: no", "SIGHUP", "/healthz", "/readyz", "roomd token", "ROOMD_CONFIG"} {
		if !bytes.Contains(doc, []byte(want)) {
			t.Errorf("docs/OPERATIONS.md does not mention %q", want)
		}
	}
}

// Compression is a namespace setting, off by default; the server offers
// permessage-deflate when rooms or any namespace has it on, and compresses
// frames from websocket.deflate_min_bytes.
func TestCompressionSetting(t *testing.T) {
	c := mustLoad(t, Sources{})
	if sc := c.ServerConfig(); sc.Deflate || sc.DeflateMinBytes != 160 || c.RoomConfig().Default.Compression {
		t.Errorf("defaults: offered %v, min %d, rooms %v", sc.Deflate, sc.DeflateMinBytes, c.RoomConfig().Default.Compression)
	}
	c = mustLoad(t, Sources{File: testutil.WriteFile(t, "roomd.yaml", `
websocket: {deflate_min_bytes: 1KiB}
namespaces:
  chat: {compression: true}
  board: {}
`)})
	sc, rc := c.ServerConfig(), c.RoomConfig()
	if !sc.Deflate || sc.DeflateMinBytes != 1<<10 || !rc.Namespaces["chat"].Compression || rc.Namespaces["board"].Compression || rc.Default.Compression {
		t.Errorf("one namespace: offered %v, min %d, chat %v, board %v, rooms %v", sc.Deflate, sc.DeflateMinBytes,
			rc.Namespaces["chat"].Compression, rc.Namespaces["board"].Compression, rc.Default.Compression)
	}
	// Under rooms, every namespace inherits it, and one may turn it off.
	c = mustLoad(t, Sources{File: testutil.WriteFile(t, "roomd.yaml", `
rooms: {compression: true}
namespaces:
  chat: {}
  board: {compression: false}
`)})
	sc, rc = c.ServerConfig(), c.RoomConfig()
	if !sc.Deflate || !rc.Default.Compression || !rc.Namespaces["chat"].Compression || rc.Namespaces["board"].Compression {
		t.Errorf("under rooms: offered %v, rooms %v, chat %v, board %v", sc.Deflate, rc.Default.Compression,
			rc.Namespaces["chat"].Compression, rc.Namespaces["board"].Compression)
	}
	// Under rooms alone, by its flag.
	c = mustLoad(t, Sources{Flags: []FlagValue{{Name: "compression", Value: "true"}}})
	if !c.ServerConfig().Deflate || !c.RoomConfig().Default.Compression {
		t.Errorf("--compression: offered %v, rooms %v", c.ServerConfig().Deflate, c.RoomConfig().Default.Compression)
	}
}
