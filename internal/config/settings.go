package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// setting is one key of Config: where it lives in the file, its flag (and
// so its ROOMD_* variable), its default and what it bounds. The table below
// is the one list of settings: the file loader, the flags, the variables,
// fill, validate and `roomd serve -h` all read it, and a test checks that
// docs/OPERATIONS.md names every entry.
type setting struct {
	key   string // dotted YAML path; for ns settings, the key under rooms and under namespaces.NAME
	flag  string // flag name without dashes; "" for none
	def   string // default, in the form the file takes; "" when zero or derived
	shown string // default as shown in help, when def does not say it
	usage string
	ns    bool // a namespace setting (rooms.KEY and namespaces.NAME.KEY)
	// negOK allows a negative duration (it means "none").
	negOK bool
	// positive requires a value above zero after defaults are filled.
	positive bool
	// secret values are masked when printed and never logged.
	secret bool
	// split: a list whose flag value, and scalar in the file, may hold
	// several comma-separated entries (as its variable always may).
	split bool
}

// section groups settings in help output.
type section struct {
	title string
	keys  []setting
}

var sections = []section{
	{"Node", []setting{
		{key: "listen", flag: "addr", def: ":8080", usage: "listen address, host:port (port 0 picks a free one)"},
		{key: "node_name", flag: "node-name", shown: "the host name and a random suffix (HOST-3f9a)", usage: "this node's name, unique in a cluster; sent in welcome and /v1/info"},
		{key: "shutdown_grace", flag: "shutdown-grace", def: "10s", positive: true, usage: "how long shutdown waits for connections to close after bye (and, before, for a cluster member's rooms to be handed over)"},
		{key: "drain_delay", flag: "drain-delay", def: "5s", negOK: true, usage: "on SIGTERM or SIGINT, how long /readyz answers 503 draining, the node still serving, before the listener closes (negative: none)"},
		{key: "log.format", flag: "log-format", shown: "text on a terminal, json otherwise", usage: "log format: text or json"},
		{key: "log.level", flag: "log-level", def: "info", usage: "log level: debug, info, warn or error"},
		{key: "web", flag: "web", def: "true", usage: "serve the SDK bundle and demo apps at / (false: 404)"},
		{key: "metrics", flag: "metrics", def: "true", usage: "serve Prometheus metrics at /metrics (false: none kept)"},
	}},
	{"TLS", []setting{
		{key: "tls.cert", flag: "tls-cert", usage: "PEM certificate (chain) file; with tls.key, serve HTTPS/WSS (re-read on SIGHUP)"},
		{key: "tls.key", flag: "tls-key", usage: "PEM private key file of tls.cert"},
	}},
	{"Tokens and API keys", []setting{
		{key: "auth.jwt_secrets", flag: "jwt-secret", secret: true, usage: "HS256 secret; repeat for several (rotation); the first signs `roomd token`"},
		{key: "auth.public_key_files", flag: "jwt-public-key", usage: "PEM file of RS256/ES256 public keys; repeatable (re-read on SIGHUP)"},
		{key: "auth.jwks_file", flag: "jwks-file", usage: "JWKS file of RS256/ES256 keys (re-read on SIGHUP)"},
		{key: "auth.issuer", flag: "jwt-issuer", usage: "required \"iss\" of tokens (empty: not checked)"},
		{key: "auth.audience", flag: "jwt-audience", usage: "required \"aud\" of tokens (empty: not checked)"},
		{key: "auth.leeway", flag: "jwt-leeway", def: "5s", negOK: true, usage: "clock skew tolerated on exp and nbf (negative: none)"},
		{key: "auth.require_expiry", flag: "jwt-require-expiry", shown: "false", usage: "refuse tokens without exp"},
		{key: "auth.max_token_bytes", flag: "jwt-max-token-bytes", def: "16KiB", usage: "longest token accepted"},
		{key: "api_keys", flag: "api-key", secret: true, usage: "key of the HTTP API (Authorization: Bearer); repeatable"},
		{key: "allowed_origins", flag: "allowed-origin", shown: "any in dev mode, same host otherwise", usage: "browser Origin allowed for WebSocket, SSE and CORS (\"*\": any); repeatable"},
	}},
	{"Connection limits", []setting{
		{key: "limits.max_conns", flag: "max-conns", shown: "0 (no limit)", usage: "WebSocket connections of this node (bye 504 beyond)"},
		{key: "limits.max_conns_per_user", flag: "max-conns-per-user", shown: "0 (no limit)", usage: "one user's WebSocket connections on this node (bye 504 beyond)"},
		{key: "limits.max_pending", flag: "max-pending", def: "1024", usage: "connections not yet past hello (HTTP 503 beyond)"},
		{key: "limits.max_pending_per_addr", flag: "max-pending-per-addr", def: "32", usage: "connections of one source address not yet past hello (HTTP 429 beyond)"},
		{key: "limits.conn_rate_per_addr", flag: "conn-rate-per-addr", def: "20", usage: "new WebSocket connections and SSE streams per second per source address (HTTP 429 beyond)"},
		{key: "limits.conn_burst_per_addr", flag: "conn-burst-per-addr", shown: "5 × conn_rate_per_addr", usage: "burst of new connections per source address"},
		{key: "trusted_proxies", flag: "trusted-proxy", split: true, usage: "CIDR (or IP) of a reverse proxy whose X-Forwarded-For / Forwarded names the client address for the per-address limits; repeatable or comma-separated (none: the headers are ignored)"},
		{key: "limits.max_rooms_per_conn", flag: "max-rooms-per-conn", def: "64", usage: "rooms one connection may join (err 108 beyond)"},
		{key: "limits.max_ops_in_flight", flag: "max-ops-in-flight", def: "64", usage: "room operations of one connection waiting or running, off its reader (err 7 beyond, once none completes for 0.5 s)"},
		{key: "limits.max_message_bytes", flag: "max-message-bytes", def: "64KiB", usage: "largest inbound WebSocket message (bye 103 beyond)"},
		{key: "limits.max_frames_per_message", flag: "max-frames-per-message", def: "256", usage: "frames one inbound message may carry (bye 103 beyond)"},
		{key: "limits.frame_rate", flag: "frame-rate", def: "200", positive: true, usage: "inbound frames per second per connection (err 5 beyond)"},
		{key: "limits.frame_burst", flag: "frame-burst", shown: "2 × frame_rate", usage: "inbound frame burst per connection"},
		{key: "limits.byte_rate", flag: "byte-rate", def: "1MiB", usage: "inbound bytes per second per connection (err 5 beyond)"},
		{key: "limits.flood_strikes", flag: "flood-strikes", def: "100", usage: "rate-limited frames tolerated before bye 5"},
		{key: "limits.queue_max_bytes", flag: "queue-max-bytes", def: "1MiB", usage: "outbound queue per connection (bye 2 slow_consumer beyond)"},
		{key: "limits.socket_unsent_bytes", flag: "socket-unsent-bytes", def: "128KiB", usage: "bytes a WebSocket or SSE client's socket holds not yet sent (Linux TCP_NOTSENT_LOWAT); beyond them what the client is slow to take waits in its queue, where limits.queue_max_bytes and timeouts.write see it"},
		{key: "limits.max_body_bytes", flag: "max-body-bytes", def: "256KiB", usage: "largest HTTP API request body (HTTP 413 beyond)"},
	}},
	{"Timeouts", []setting{
		{key: "timeouts.hello", flag: "hello-timeout", def: "10s", positive: true, usage: "time a new connection has to send hello (bye 500)"},
		{key: "timeouts.ping_interval", flag: "ping-interval", def: "25s", positive: true, usage: "interval between pings to each connection"},
		{key: "timeouts.pong", flag: "pong-timeout", def: "10s", positive: true, usage: "time a connection has to answer a ping (bye 3)"},
		{key: "timeouts.write", flag: "write-timeout", def: "10s", positive: true, usage: "bound on one write to a connection; a WebSocket client whose socket took nothing more for this long gets bye 2 slow_consumer"},
		{key: "timeouts.bye_linger", flag: "bye-linger", def: "30s", positive: true, usage: "time a connection given a bye (slow_consumer, say) has to take the rest of what was written and the bye, when its socket is full; then it is closed"},
		{key: "timeouts.close", flag: "close-timeout", def: "1s", positive: true, usage: "wait for a client's close reply after bye"},
		{key: "timeouts.handshake", flag: "handshake-timeout", def: "5s", positive: true, usage: "time a new connection has to finish its TLS handshake and send its HTTP request's headers (the connection is closed)"},
		{key: "timeouts.api_body", flag: "api-body-timeout", def: "10s", positive: true, usage: "time an HTTP API request's body has to arrive, once its key is checked (HTTP 408, connection closed)"},
		{key: "timeouts.api_request", flag: "api-request-timeout", def: "30s", positive: true, usage: "bound on an HTTP API request, its body and room operation together (HTTP 503, code 6); writing the answer gets timeouts.write more"},
	}},
	{"WebSocket buffers", []setting{
		{key: "websocket.read_buffer_size", flag: "ws-read-buffer", def: "1KiB", usage: "WebSocket read buffer per connection (let go while it is parked)"},
		{key: "websocket.write_buffer_size", flag: "ws-write-buffer", def: "16KiB", usage: "pooled WebSocket write buffer, held only while writing"},
		{key: "websocket.park_after", flag: "ws-park-after", def: "10s", negOK: true, usage: "an idle connection's reader goroutine and read buffer are let go after this long without input; its socket waits in an epoll set (Linux, plain TCP). Negative: never"},
		{key: "websocket.deflate_min_bytes", flag: "ws-deflate-min-bytes", def: "160", usage: "smallest frame sent compressed to a connection that negotiated permessage-deflate, in a room whose namespace has compression on (smaller frames gain nothing)"},
		{key: "websocket.flushers", flag: "flushers", def: "0", shown: "0 (half the cores, at least 1)", usage: "goroutines writing queued frames and SSE events to sockets in parallel"},
	}},
	{"Overload", []setting{
		{key: "admission.target", flag: "admission-target", def: "50ms", negOK: true, usage: "delay above which publishes are refused with err 7 overloaded (HTTP 503 + Retry-After): the 90th percentile, over an interval, of the creation-to-write delay of the node's own writes (not those that waited for a client's socket), or of a room's read-to-start wait of its publishes (negative: admission off)"},
		{key: "admission.interval", flag: "admission-interval", def: "100ms", positive: true, usage: "how long admission measures delays before its limits move"},
	}},
	{"SSE", []setting{
		{key: "sse.ping_interval", flag: "sse-ping-interval", def: "15s", positive: true, usage: "interval of \": ping\" comments on an idle SSE stream"},
		{key: "sse.retry", flag: "sse-retry", def: "3s", positive: true, usage: "reconnection delay an SSE stream announces"},
		{key: "sse.queue_max_bytes", flag: "sse-queue-max-bytes", shown: "limits.queue_max_bytes", usage: "outbound queue per SSE observer (stream ends with bye 2 beyond)"},
	}},
	{"Cluster", []setting{
		{key: "cluster.bind", flag: "cluster-bind", usage: "gossip address, host:port, TCP and UDP (e.g. 0.0.0.0:7946); setting it makes this node a member of a cluster"},
		{key: "cluster.advertise", flag: "cluster-advertise", shown: "the bind address, or a private address of this machine", usage: "gossip address the other nodes reach this one on, host:port"},
		{key: "cluster.join", flag: "join", split: true, usage: "seeds: gossip addresses host:port, or DNS names resolving to several nodes; repeatable or comma-separated"},
		{key: "cluster.expect", flag: "cluster-expect", shown: "0 (none)", usage: "members to wait for before bootstrapping a new cluster together (as bootstrap_expect); until then, or until an existing cluster is joined, the node owns no room, /readyz says 503 and joins get err 6. 0: with --join, only join an existing cluster; without, be a cluster of one"},
		{key: "cluster.label", flag: "cluster-label", usage: "cluster name: nodes with different labels never merge"},
		{key: "cluster.key", flag: "cluster-key", secret: true, shown: "derived from cluster.secret", usage: "gossip encryption key: base64 of 16, 24 or 32 random bytes, the same on every node"},
		{key: "cluster.secret", flag: "cluster-secret", secret: true, usage: "shared secret of the cluster: peer links prove it (it is never sent), and it keys gossip unless cluster.key is set; required with cluster.bind"},
		{key: "cluster.advertise_http", flag: "cluster-advertise-http", shown: "the listen port at the listen host, else at the advertise host", usage: "HTTP address, host:port, the other nodes dial for room traffic"},
		{key: "cluster.tls_ca", flag: "cluster-tls-ca", shown: "the system roots", usage: "PEM file of the CAs trusted for other nodes' certificates, when nodes serve TLS"},
		{key: "cluster.tls_insecure", flag: "cluster-tls-insecure", shown: "false", usage: "do not verify other nodes' certificates (the secret is then exposed to an interceptor)"},
		{key: "cluster.fast", flag: "cluster-fast", shown: "false", usage: "fast failure detection (about 1 s) for tests and local clusters, instead of memberlist's LAN timings"},
		{key: "cluster.partitions", flag: "cluster-partitions", def: "256", positive: true, usage: "partitions rooms hash into; every node of a cluster must have the same"},
		{key: "cluster.replicas", flag: "cluster-replicas", def: "3", positive: true, usage: "members that replicate each partition (a raft group; a majority must live for its rooms to take writes)"},
		{key: "cluster.link_max_message", flag: "cluster-link-max-message", def: "512MiB", positive: true, usage: "largest message a peer link accepts (a partition's raft snapshot travels in one); a peer that sends more is cut off; the same on every node"},
		{key: "cluster.retry_timeout", flag: "cluster-retry-timeout", def: "10s", positive: true, usage: "how long an op retries a room whose owner moves or is unreachable (then err 6)"},
	}},
	{"Rooms", []setting{
		{key: "rooms.presence_grace", flag: "presence-grace", def: "5s", negOK: true, usage: "how long a dropped connection stays present (negative: none)"},
		{key: "rooms.presence_window", flag: "presence-window", def: "20ms", negOK: true, usage: "how long a room gathers presence changes into one pres frame, at most 5s (negative: each change at once)"},
		{key: "rooms.presence_window_max", flag: "presence-window-max", def: "1s", usage: "how long a busy room's presence window may grow (doubling while changes keep coming), at most 5s"},
		{key: "rooms.dedupe_window", flag: "dedupe-window", def: "5m", usage: "how long idempotency keys are remembered (at least 5m)"},
		{key: "rooms.dedupe_max_keys", flag: "dedupe-max-keys", def: "10000", usage: "idempotency keys remembered per room"},
		{key: "rooms.max_rooms", flag: "max-rooms", def: "100000", usage: "rooms this node holds; a join or write that would create one more gets err 7"},
		{key: "rooms.max_state_bytes", flag: "max-state-bytes", def: "256MiB", usage: "state bytes of all this node's rooms together; a set that would grow it gets err 7"},
		{key: "rooms.create_rate", flag: "room-create-rate", def: "10", usage: "rooms per second one user (anonymous: one connection) may create on this node (err 5 beyond)"},
		{key: "rooms.create_burst", flag: "room-create-burst", shown: "10 × create_rate", usage: "burst of rooms one user may create"},
	}},
	{"Hooks (docs/PROTOCOL.md, \"Hooks\"; the per-room ones are room settings)", []setting{
		{key: "hooks.secret", flag: "hooks-secret", secret: true, usage: "HMAC-SHA256 key signing every hook request (header Roomd-Signature); required when a hook URL is set"},
		{key: "hooks.connect_url", flag: "hooks-connect-url", usage: "URL the connect hook is posted to: it authorises each connection instead of its token (empty: none)"},
		{key: "hooks.connect_timeout", flag: "hooks-connect-timeout", def: "2s", positive: true, usage: "bound on one connect call"},
		{key: "hooks.connect_policy", flag: "hooks-connect-policy", def: "deny", usage: "when connect fails: deny (bye 6), allow or allow_and_log (the token is verified as without the hook)"},
		{key: "hooks.connect_headers", flag: "hooks-connect-header", split: true, usage: "upgrade request header forwarded to connect (cookies always are); repeatable or comma-separated"},
		{key: "hooks.breaker_failures", flag: "hooks-breaker-failures", def: "5", positive: true, usage: "consecutive failures of one hook (per namespace) that open its circuit breaker"},
		{key: "hooks.breaker_open", flag: "hooks-breaker-open", def: "10s", positive: true, usage: "how long an open breaker fails calls at once before it tries one again"},
		{key: "hooks.retry_min", flag: "hooks-retry-min", def: "100ms", positive: true, usage: "first backoff between attempts to deliver a published, occupied or vacated event (doubling)"},
		{key: "hooks.retry_max", flag: "hooks-retry-max", def: "10s", positive: true, usage: "longest backoff between delivery attempts"},
		{key: "hooks.retry_attempts", flag: "hooks-retry-attempts", def: "10", positive: true, usage: "attempts to deliver an event before it goes to the dead-letter store"},
		{key: "hooks.dead_letter_max", flag: "hooks-dead-letter-max", def: "10000", positive: true, usage: "events the dead-letter store keeps (the oldest dropped beyond)"},
		{key: "hooks.queue_max", flag: "hooks-queue-max", def: "100000", positive: true, usage: "events waiting for delivery on this node (dead-lettered at once beyond)"},
	}},
	{"Room settings (under rooms: for every namespace, under namespaces.NAME: for one)", []setting{
		{key: "history_size", flag: "history-size", def: "100", ns: true, usage: "messages kept per room"},
		{key: "history_ttl", flag: "history-ttl", def: "10m", ns: true, usage: "age limit of a room's history"},
		{key: "idle_ttl", flag: "room-idle-ttl", shown: "history_ttl", ns: true, usage: "how long an empty room lives on (one with no history and no state goes at once)"},
		{key: "presence", flag: "presence", def: "true", ns: true, usage: "presence on (false: no snapshot, no deltas, pres ops err 107)"},
		{key: "max_members", flag: "max-members", def: "0", shown: "0 (no limit)", ns: true, usage: "members per room (err 106 beyond)"},
		{key: "max_payload_bytes", flag: "max-payload-bytes", def: "64KiB", ns: true, usage: "largest message payload (err 103 beyond)"},
		{key: "max_presence_bytes", flag: "max-presence-bytes", def: "1KiB", ns: true, usage: "largest presence data (err 103 beyond)"},
		{key: "presence_large", flag: "presence-large", def: "0", shown: "0 (off)", ns: true, usage: "presence entries above which a room is in large-room mode: members get the count and a sample, not every change"},
		{key: "state_max_keys", flag: "state-max-keys", def: "10000", ns: true, usage: "state keys per room (err 108 beyond)"},
		{key: "state_max_bytes", flag: "state-max-bytes", def: "4MiB", ns: true, usage: "state bytes per room, keys and values (err 103 beyond)"},
		{key: "state_max_value_bytes", flag: "state-max-value-bytes", shown: "max_payload_bytes", ns: true, usage: "largest state value (err 103 beyond)"},
		{key: "compression", flag: "compression", def: "false", ns: true, usage: "send the rooms' events compressed (permessage-deflate, RFC 7692) to the WebSocket clients that negotiate it; the server offers the extension only when this is on under rooms or in a namespace"},
		{key: "api_publish_only", flag: "api-publish-only", def: "false", ns: true, usage: "only the HTTP API may publish and set state (clients: err 107)"},
		{key: "publish_rate", flag: "publish-rate", def: "0", shown: "0 (no per-room limit)", ns: true, usage: "publishes per second per member in one room (err 5 beyond)"},
		{key: "publish_burst", flag: "publish-burst", shown: "2 × publish_rate", ns: true, usage: "publish burst per member in one room"},
		{key: "room_publish_rate", flag: "room-publish-rate", def: "0", shown: "0 (no limit)", ns: true, usage: "publishes per second in one room, all members and the API together (err 5 beyond)"},
		{key: "room_publish_burst", flag: "room-publish-burst", shown: "room_publish_rate / 10", ns: true, usage: "publish burst of one room"},
		{key: "hook_url", flag: "hook-url", ns: true, usage: "URL the room hooks are posted to (empty: none)"},
		{key: "hooks", flag: "hooks", ns: true, usage: "room hooks called, comma-separated: join, publish, published, occupied, vacated (empty: none)"},
		{key: "hook_timeout", flag: "hook-timeout", def: "2s", ns: true, usage: "bound on one call of a room hook"},
		{key: "hook_join_policy", flag: "hook-join-policy", def: "deny", ns: true, usage: "when join fails: deny (err 6), allow or allow_and_log"},
		{key: "hook_publish_policy", flag: "hook-publish-policy", def: "deny", ns: true, usage: "when publish fails: deny (err 6), allow or allow_and_log"},
	}},
}

// settings is every setting, in the order of sections.
var settings = func() []*setting {
	var all []*setting
	for i := range sections {
		for j := range sections[i].keys {
			all = append(all, &sections[i].keys[j])
		}
	}
	return all
}()

// settingByKey finds a setting by its key ("limits.max_conns"; a namespace
// setting by "rooms.KEY", "namespaces.NAME.KEY" or its bare KEY).
func settingByKey(key string) *setting {
	nsKey := ""
	if k, ok := strings.CutPrefix(key, "rooms."); ok {
		nsKey = k
	} else if k, ok := strings.CutPrefix(key, "namespaces."); ok {
		if _, k, ok = strings.Cut(k, "."); ok {
			nsKey = k
		}
	}
	for _, s := range settings {
		if s.ns && (s.key == nsKey || s.key == key) || !s.ns && s.key == key {
			return s
		}
	}
	return nil
}

func settingByFlag(name string) *setting {
	for _, s := range settings {
		if s.flag == name {
			return s
		}
	}
	return nil
}

// path is the key's full path in the file: namespace settings live under
// rooms.
func (s *setting) path() string {
	if s.ns {
		return "rooms." + s.key
	}
	return s.key
}

func (s *setting) list() bool {
	return s.field(&Config{}).Kind() == reflect.Slice
}

// field returns the setting's field in c (for a namespace setting, the
// pointer field under rooms).
func (s *setting) field(c *Config) reflect.Value {
	v, ok := lookup(reflect.ValueOf(c).Elem(), strings.Split(s.path(), "."))
	if !ok {
		panic("setting " + s.key + " has no field in Config")
	}
	return v
}

// nsField returns a namespace setting's (pointer) field in ns.
func (s *setting) nsField(ns *NamespaceConfig) reflect.Value {
	v, ok := lookup(reflect.ValueOf(ns).Elem(), []string{s.key})
	if !ok {
		panic("setting " + s.key + " has no field in NamespaceConfig")
	}
	return v
}

// lookup finds the field at a YAML path in a struct value, following inline
// structs.
func lookup(v reflect.Value, path []string) (reflect.Value, bool) {
	if len(path) == 0 {
		return v, true
	}
	if v.Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	t := v.Type()
	for i := range t.NumField() {
		name, opts, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if opts == "inline" {
			if f, ok := lookup(v.Field(i), path); ok {
				return f, true
			}
			continue
		}
		if name == path[0] {
			return lookup(v.Field(i), path[1:])
		}
	}
	return reflect.Value{}, false
}

var (
	durationType = reflect.TypeFor[Duration]()
	sizeType     = reflect.TypeFor[Size]()
)

// setValue parses s into v, allocating v if it is a nil pointer. For a list,
// it appends s.
func setValue(v reflect.Value, s string) error {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	s = strings.TrimSpace(s)
	switch {
	case v.Type() == durationType:
		d, err := parseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case v.Type() == sizeType:
		n, err := parseSize(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(n))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Int:
		n, err := strconv.ParseInt(s, 10, 0)
		if err != nil {
			return fmt.Errorf("invalid integer %q", s)
		}
		v.SetInt(n)
	case v.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("invalid number %q", s)
		}
		v.SetFloat(f)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("invalid boolean %q (want true or false)", s)
		}
		v.SetBool(b)
	case v.Kind() == reflect.Slice:
		v.Set(reflect.Append(v, reflect.ValueOf(s)))
	default:
		panic("setValue: unsupported type " + v.Type().String())
	}
	return nil
}

// parseDuration reads a Go duration ("25s", "1m30s"); a bare "0" is zero.
func parseDuration(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (e.g. 500ms, 25s, 10m, 1h)", s)
	}
	return d, nil
}

// check validates a filled value of the setting (v is not a pointer).
func (s *setting) check(v reflect.Value, key string) error {
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	fail := func(format string, args ...any) error {
		name := key
		if s.flag != "" && !strings.HasPrefix(key, "namespaces.") {
			name += " (--" + s.flag + ")"
		}
		return fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...))
	}
	var n float64
	switch v.Kind() {
	case reflect.Int, reflect.Int64:
		n = float64(v.Int())
	case reflect.Float64:
		n = v.Float()
	default:
		return nil
	}
	shown := fmt.Sprint(v.Interface())
	if v.Type() == durationType {
		shown = FormatDuration(time.Duration(v.Int()))
	}
	switch {
	case n < 0 && !s.negOK:
		return fail("must not be negative, got %s", shown)
	case n <= 0 && s.positive:
		return fail("must be positive, got %s", shown)
	case v.Kind() == reflect.Int && n > math.MaxInt32 && v.Type() != durationType && v.Type() != sizeType:
		return fail("%s is out of range", shown)
	}
	return nil
}
