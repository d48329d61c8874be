package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/server"
	"github.com/roomd/roomd/server/auth"
)

// Config is a node's whole configuration: the YAML file's schema, and what
// `roomd config check` prints. It is built in layers, each overriding the one
// before: defaults, the file, ROOMD_* variables, flags (see Load). Every
// key is listed, with its flag, variable and default, in settings.go.
//
// A zero value means the key's default, as in server.Config and room.Config.
type Config struct {
	Listen        string   `yaml:"listen"`
	NodeName      string   `yaml:"node_name"`
	ShutdownGrace Duration `yaml:"shutdown_grace"`
	DrainDelay    Duration `yaml:"drain_delay"`
	Log           struct {
		Format string `yaml:"format"`
		Level  string `yaml:"level"`
	} `yaml:"log"`
	Web     *bool `yaml:"web"`
	Metrics *bool `yaml:"metrics"`
	TLS     struct {
		Cert string `yaml:"cert"`
		Key  string `yaml:"key"`
	} `yaml:"tls"`
	Auth struct {
		JWTSecrets     []string `yaml:"jwt_secrets"`
		PublicKeyFiles []string `yaml:"public_key_files"`
		JWKSFile       string   `yaml:"jwks_file"`
		Issuer         string   `yaml:"issuer"`
		Audience       string   `yaml:"audience"`
		Leeway         Duration `yaml:"leeway"`
		RequireExpiry  bool     `yaml:"require_expiry"`
		MaxTokenBytes  Size     `yaml:"max_token_bytes"`
	} `yaml:"auth"`
	APIKeys        []string `yaml:"api_keys"`
	AllowedOrigins []string `yaml:"allowed_origins"`
	TrustedProxies []string `yaml:"trusted_proxies"`
	Limits         struct {
		MaxConns            int     `yaml:"max_conns"`
		MaxConnsPerUser     int     `yaml:"max_conns_per_user"`
		MaxPending          int     `yaml:"max_pending"`
		MaxPendingPerAddr   int     `yaml:"max_pending_per_addr"`
		ConnRatePerAddr     float64 `yaml:"conn_rate_per_addr"`
		ConnBurstPerAddr    int     `yaml:"conn_burst_per_addr"`
		MaxOpsInFlight      int     `yaml:"max_ops_in_flight"`
		MaxRoomsPerConn     int     `yaml:"max_rooms_per_conn"`
		MaxMessageBytes     Size    `yaml:"max_message_bytes"`
		MaxFramesPerMessage int     `yaml:"max_frames_per_message"`
		FrameRate           float64 `yaml:"frame_rate"`
		FrameBurst          int     `yaml:"frame_burst"`
		ByteRate            Size    `yaml:"byte_rate"`
		FloodStrikes        int     `yaml:"flood_strikes"`
		QueueMaxBytes       Size    `yaml:"queue_max_bytes"`
		SocketUnsentBytes   Size    `yaml:"socket_unsent_bytes"`
		MaxBodyBytes        Size    `yaml:"max_body_bytes"`
	} `yaml:"limits"`
	Timeouts struct {
		Hello        Duration `yaml:"hello"`
		PingInterval Duration `yaml:"ping_interval"`
		Pong         Duration `yaml:"pong"`
		Write        Duration `yaml:"write"`
		Close        Duration `yaml:"close"`
		ByeLinger    Duration `yaml:"bye_linger"`
		Handshake    Duration `yaml:"handshake"`
		APIBody      Duration `yaml:"api_body"`
		APIRequest   Duration `yaml:"api_request"`
	} `yaml:"timeouts"`
	WebSocket struct {
		ReadBufferSize  Size     `yaml:"read_buffer_size"`
		WriteBufferSize Size     `yaml:"write_buffer_size"`
		ParkAfter       Duration `yaml:"park_after"`
		Flushers        int      `yaml:"flushers"`
		// DeflateMinBytes is the smallest frame sent compressed; zero is
		// filled with the default, 160.
		DeflateMinBytes Size `yaml:"deflate_min_bytes"`
	} `yaml:"websocket"`
	Admission struct {
		Target   Duration `yaml:"target"`
		Interval Duration `yaml:"interval"`
	} `yaml:"admission"`
	SSE struct {
		PingInterval  Duration `yaml:"ping_interval"`
		Retry         Duration `yaml:"retry"`
		QueueMaxBytes Size     `yaml:"queue_max_bytes"`
	} `yaml:"sse"`
	Cluster struct {
		Bind          string   `yaml:"bind"`
		Advertise     string   `yaml:"advertise"`
		Join          []string `yaml:"join"`
		Expect        int      `yaml:"expect"`
		Label         string   `yaml:"label"`
		Key           string   `yaml:"key"`
		Secret        string   `yaml:"secret"`
		AdvertiseHTTP string   `yaml:"advertise_http"`
		TLSCA         string   `yaml:"tls_ca"`
		TLSInsecure   bool     `yaml:"tls_insecure"`
		Fast          bool     `yaml:"fast"`
		Partitions    int      `yaml:"partitions"`
		Replicas      int      `yaml:"replicas"`
		RetryTimeout  Duration `yaml:"retry_timeout"`
		// LinkMaxMessage bounds one inbound peer-link message; zero is
		// filled with the default, 512MiB.
		LinkMaxMessage Size `yaml:"link_max_message"`
	} `yaml:"cluster"`
	Rooms struct {
		PresenceGrace Duration `yaml:"presence_grace"`
		// PresenceWindow is how long a room gathers presence changes into
		// one frame; zero is filled with the default, 20ms.
		PresenceWindow Duration `yaml:"presence_window"`
		// PresenceWindowMax bounds a busy room's growing window; zero is
		// filled with the default, 1s.
		PresenceWindowMax Duration `yaml:"presence_window_max"`
		DedupeWindow      Duration `yaml:"dedupe_window"`
		DedupeMaxKeys     int      `yaml:"dedupe_max_keys"`
		MaxRooms          int      `yaml:"max_rooms"`
		MaxStateBytes     Size     `yaml:"max_state_bytes"`
		CreateRate        float64  `yaml:"create_rate"`
		CreateBurst       int      `yaml:"create_burst"`
		// The settings of every namespace not under Namespaces, and the
		// values a namespace there inherits for the keys it leaves out.
		NamespaceConfig `yaml:",inline"`
	} `yaml:"rooms"`
	Hooks HooksConfig `yaml:"hooks"`
	// Namespaces maps a namespace (the part of a room name before its
	// first ':') to its settings.
	Namespaces map[string]*NamespaceConfig `yaml:"namespaces"`
}

// NamespaceConfig holds the room settings of a namespace. A nil field was
// not given: under rooms it takes its default, under namespaces the value
// under rooms.
type NamespaceConfig struct {
	HistorySize        *int      `yaml:"history_size"`
	HistoryTTL         *Duration `yaml:"history_ttl"`
	IdleTTL            *Duration `yaml:"idle_ttl"`
	Presence           *bool     `yaml:"presence"`
	MaxMembers         *int      `yaml:"max_members"`
	MaxPayloadBytes    *Size     `yaml:"max_payload_bytes"`
	MaxPresenceBytes   *Size     `yaml:"max_presence_bytes"`
	PresenceLarge      *int      `yaml:"presence_large"`
	Compression        *bool     `yaml:"compression"`
	StateMaxKeys       *int      `yaml:"state_max_keys"`
	StateMaxBytes      *Size     `yaml:"state_max_bytes"`
	StateMaxValueBytes *Size     `yaml:"state_max_value_bytes"`
	APIPublishOnly     *bool     `yaml:"api_publish_only"`
	PublishRate        *float64  `yaml:"publish_rate"`
	PublishBurst       *int      `yaml:"publish_burst"`
	RoomPublishRate    *float64  `yaml:"room_publish_rate"`
	RoomPublishBurst   *int      `yaml:"room_publish_burst"`
	HookURL            *string   `yaml:"hook_url"`
	Hooks              *string   `yaml:"hooks"`
	HookTimeout        *Duration `yaml:"hook_timeout"`
	HookJoinPolicy     *string   `yaml:"hook_join_policy"`
	HookPublishPolicy  *string   `yaml:"hook_publish_policy"`
}

// Duration is a time.Duration written as a Go duration string ("25s").
type Duration time.Duration

// MarshalYAML writes d the way time.ParseDuration reads it, without the
// trailing zero units of time.Duration.String ("10m", not "10m0s").
func (d Duration) MarshalYAML() (any, error) { return FormatDuration(time.Duration(d)), nil }

// FormatDuration writes d as Duration does in YAML ("10m", "1h30m").
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Size is a byte count, written as a number or with a unit ("64KiB").
type Size int

// MarshalYAML writes s with the largest binary unit that divides it, or as
// a plain number.
func (s Size) MarshalYAML() (any, error) {
	if f := formatSize(int(s)); f != fmt.Sprint(int(s)) {
		return f, nil
	}
	return int(s), nil
}

func formatSize(n int) string {
	for _, u := range []struct {
		name string
		n    int
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.n == 0 {
			return fmt.Sprintf("%d%s", n/u.n, u.name)
		}
	}
	return fmt.Sprint(n)
}

// fill replaces zero values with their defaults, namespaces' missing keys
// with the values under rooms, and derived defaults (frame_burst, idle_ttl,
// ...) with the values they derive from. It runs after every layer is in.
func (c *Config) fill() {
	for _, s := range settings {
		if s.def == "" || s.ns {
			continue
		}
		v := s.field(c)
		if v.IsZero() {
			if err := setValue(v, s.def); err != nil {
				panic("bad default of " + s.key + ": " + err.Error())
			}
		}
	}
	if c.Limits.FrameBurst == 0 && c.Limits.FrameRate > 0 {
		c.Limits.FrameBurst = max(1, int(math.Ceil(2*c.Limits.FrameRate)))
	}
	if c.SSE.QueueMaxBytes == 0 {
		c.SSE.QueueMaxBytes = c.Limits.QueueMaxBytes
	}
	// Namespaces inherit the keys they leave out from rooms before either
	// is filled, so that a derived default (idle_ttl) follows the
	// namespace's own base (history_ttl), not the one under rooms.
	for _, ns := range c.Namespaces {
		ns.inherit(&c.Rooms.NamespaceConfig)
	}
	c.Rooms.fillNamespace()
	for _, ns := range c.Namespaces {
		ns.fillNamespace()
	}
}

// inherit sets every nil field of ns to a copy of from's.
func (ns *NamespaceConfig) inherit(from *NamespaceConfig) {
	for _, s := range settings {
		if !s.ns {
			continue
		}
		dst, src := s.nsField(ns), s.nsField(from)
		if dst.IsNil() && !src.IsNil() {
			p := reflect.New(src.Type().Elem())
			p.Elem().Set(src.Elem())
			dst.Set(p)
		}
	}
}

// fillNamespace gives every key of ns its value: the default where it is
// nil (or zero, but for booleans), the derived value for the derived keys.
func (ns *NamespaceConfig) fillNamespace() {
	for _, s := range settings {
		if !s.ns || s.def == "" {
			continue
		}
		v := s.nsField(ns)
		if v.IsNil() || (v.Elem().Kind() != reflect.Bool && v.Elem().IsZero()) {
			if err := setValue(v, s.def); err != nil {
				panic("bad default of " + s.key + ": " + err.Error())
			}
		}
	}
	if ns.IdleTTL == nil || *ns.IdleTTL == 0 {
		d := *ns.HistoryTTL
		ns.IdleTTL = &d
	}
	if ns.StateMaxValueBytes == nil || *ns.StateMaxValueBytes == 0 {
		n := *ns.MaxPayloadBytes
		ns.StateMaxValueBytes = &n
	}
	if ns.PublishBurst == nil || *ns.PublishBurst == 0 {
		n := 0
		if r := *ns.PublishRate; r > 0 && !math.IsInf(r, 0) {
			n = max(1, int(math.Ceil(2*r)))
		}
		ns.PublishBurst = &n
	}
	if ns.RoomPublishBurst == nil || *ns.RoomPublishBurst == 0 {
		n := 0
		if r := *ns.RoomPublishRate; r > 0 && !math.IsInf(r, 0) {
			n = max(1, int(math.Ceil(r/10)))
		}
		ns.RoomPublishBurst = &n
	}
}

// validate checks every value, after fill, and names the key at fault.
// Validate checks a Config that Load filled and a program changed since.
func (c *Config) Validate() error { return c.validate() }

func (c *Config) validate() error {
	for _, s := range settings {
		if s.ns {
			if err := s.check(s.nsField(&c.Rooms.NamespaceConfig).Elem(), "rooms."+s.key); err != nil {
				return err
			}
			continue
		}
		if err := s.check(s.field(c), s.key); err != nil {
			return err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Namespaces)) {
		ns := c.Namespaces[name]
		if name == "" || strings.IndexByte(name, ':') >= 0 || !protocol.ValidRoomName(name) {
			return fmt.Errorf("namespaces: %q is not a namespace name (room-name characters [A-Za-z0-9_.@-], no ':')", name)
		}
		for _, s := range settings {
			if s.ns {
				if err := s.check(s.nsField(ns).Elem(), "namespaces."+name+"."+s.key); err != nil {
					return err
				}
			}
		}
	}

	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return keyError("listen", "want host:port (\":8080\", \"127.0.0.1:0\"), got %q", c.Listen)
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		return keyError("log.format", "want text or json, got %q", c.Log.Format)
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(c.Log.Level)); err != nil {
		return keyError("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return errors.New("tls.cert (--tls-cert) and tls.key (--tls-key) go together: give both or neither")
	}
	for i, s := range c.Auth.JWTSecrets {
		if strings.TrimSpace(s) == "" {
			return keyError("auth.jwt_secrets", "entry %d is empty", i+1)
		}
	}
	for i, f := range c.Auth.PublicKeyFiles {
		if strings.TrimSpace(f) == "" {
			return keyError("auth.public_key_files", "entry %d is empty", i+1)
		}
	}
	for i, k := range c.APIKeys {
		if strings.TrimSpace(k) == "" {
			return keyError("api_keys", "entry %d is empty", i+1)
		}
	}
	for _, o := range c.AllowedOrigins {
		if err := checkOrigin(o); err != nil {
			return keyError("allowed_origins", "%v", err)
		}
	}
	if _, err := parsePrefixes(c.TrustedProxies); err != nil {
		return keyError("trusted_proxies", "%v", err)
	}
	for _, w := range []struct {
		key string
		d   Duration
	}{{"rooms.presence_window", c.Rooms.PresenceWindow}, {"rooms.presence_window_max", c.Rooms.PresenceWindowMax}} {
		if w.d > Duration(room.MaxPresenceWindow) {
			return keyError(w.key, "must be at most %s, got %s", FormatDuration(room.MaxPresenceWindow), FormatDuration(time.Duration(w.d)))
		}
	}
	if c.Rooms.DedupeWindow < Duration(room.MinDedupeWindow) {
		return keyError("rooms.dedupe_window", "must be at least %s, got %s", FormatDuration(room.MinDedupeWindow), FormatDuration(time.Duration(c.Rooms.DedupeWindow)))
	}
	if err := c.validateHooks(); err != nil {
		return err
	}
	return c.validateCluster()
}

// checkOrigin accepts "*" or a bare origin: scheme://host[:port].
func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q is not an origin: want \"*\" or scheme://host[:port], e.g. https://app.example.com", o)
	}
	return nil
}

// parsePrefixes reads CIDRs ("10.0.0.0/8") and bare IPs (a /32 or /128).
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range list {
		v = strings.TrimSpace(v)
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR nor an IP address", v)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// mustPrefixes is parsePrefixes of a validated list.
func mustPrefixes(list []string) []netip.Prefix {
	p, _ := parsePrefixes(list)
	return p
}

// keyError is a configuration error about one key, named with its flag
// when it has one.
func keyError(key, format string, args ...any) error {
	name := key
	if s := settingByKey(key); s != nil && s.flag != "" {
		name += " (--" + s.flag + ")"
	}
	return fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...))
}

// Dev reports whether no token key is configured: dev mode.
func (c *Config) Dev() bool {
	return len(c.Auth.JWTSecrets) == 0 && len(c.Auth.PublicKeyFiles) == 0 && c.Auth.JWKSFile == ""
}

// AuthConfig is the token verifier's configuration.
func (c *Config) AuthConfig() auth.Config {
	a := auth.Config{
		PublicKeyFiles: c.Auth.PublicKeyFiles,
		JWKSFile:       c.Auth.JWKSFile,
		Issuer:         c.Auth.Issuer,
		Audience:       c.Auth.Audience,
		Leeway:         time.Duration(c.Auth.Leeway),
		RequireExpiry:  c.Auth.RequireExpiry,
		MaxTokenBytes:  int(c.Auth.MaxTokenBytes),
	}
	for _, s := range c.Auth.JWTSecrets {
		a.HMACSecrets = append(a.HMACSecrets, []byte(s))
	}
	return a
}

// ServerConfig is the server's configuration, less what serve adds (Router,
// Auth, APIKeys, Logger, Metrics, Version, NodeName). c must be filled.
func (c *Config) ServerConfig() server.Config {
	return server.Config{
		AllowedOrigins:      c.AllowedOrigins,
		MaxConns:            c.Limits.MaxConns,
		MaxConnsPerUser:     c.Limits.MaxConnsPerUser,
		MaxPending:          c.Limits.MaxPending,
		MaxPendingPerAddr:   c.Limits.MaxPendingPerAddr,
		ConnRatePerAddr:     c.Limits.ConnRatePerAddr,
		ConnBurstPerAddr:    c.Limits.ConnBurstPerAddr,
		TrustedProxies:      mustPrefixes(c.TrustedProxies),
		SSEPingInterval:     time.Duration(c.SSE.PingInterval),
		SSERetry:            time.Duration(c.SSE.Retry),
		SSEQueueMaxBytes:    int(c.SSE.QueueMaxBytes),
		MaxBodyBytes:        int(c.Limits.MaxBodyBytes),
		NoWeb:               !*c.Web,
		HelloTimeout:        time.Duration(c.Timeouts.Hello),
		PingInterval:        time.Duration(c.Timeouts.PingInterval),
		PongTimeout:         time.Duration(c.Timeouts.Pong),
		WriteTimeout:        time.Duration(c.Timeouts.Write),
		CloseTimeout:        time.Duration(c.Timeouts.Close),
		ByeLinger:           time.Duration(c.Timeouts.ByeLinger),
		ReadHeaderTimeout:   time.Duration(c.Timeouts.Handshake),
		APIBodyTimeout:      time.Duration(c.Timeouts.APIBody),
		APIRequestTimeout:   time.Duration(c.Timeouts.APIRequest),
		MaxMessageBytes:     int(c.Limits.MaxMessageBytes),
		MaxFramesPerMessage: c.Limits.MaxFramesPerMessage,
		FrameRate:           c.Limits.FrameRate,
		FrameBurst:          c.Limits.FrameBurst,
		ByteRate:            int(c.Limits.ByteRate),
		FloodStrikes:        c.Limits.FloodStrikes,
		QueueMaxBytes:       int(c.Limits.QueueMaxBytes),
		SocketUnsentBytes:   int(c.Limits.SocketUnsentBytes),
		MaxRoomsPerConn:     c.Limits.MaxRoomsPerConn,
		MaxOpsInFlight:      c.Limits.MaxOpsInFlight,
		ReadBufferSize:      int(c.WebSocket.ReadBufferSize),
		WriteBufferSize:     int(c.WebSocket.WriteBufferSize),
		ParkAfter:           time.Duration(c.WebSocket.ParkAfter),
		Flushers:            c.WebSocket.Flushers,
		Deflate:             c.compressionOn(),
		DeflateMinBytes:     int(c.WebSocket.DeflateMinBytes),
		AdmissionTarget:     time.Duration(c.Admission.Target),
		AdmissionInterval:   time.Duration(c.Admission.Interval),
	}
}

// compressionOn reports whether rooms or any namespace has compression on:
// then the server offers permessage-deflate. c must be filled.
func (c *Config) compressionOn() bool {
	if *c.Rooms.Compression {
		return true
	}
	for _, ns := range c.Namespaces {
		if *ns.Compression {
			return true
		}
	}
	return false
}

// RoomConfig is the room manager's configuration.
func (c *Config) RoomConfig() room.Config {
	rc := room.Config{
		Default:           c.Rooms.namespace(),
		PresenceGrace:     time.Duration(c.Rooms.PresenceGrace),
		PresenceWindow:    time.Duration(c.Rooms.PresenceWindow),
		PresenceWindowMax: time.Duration(c.Rooms.PresenceWindowMax),
		DedupeWindow:      time.Duration(c.Rooms.DedupeWindow),
		DedupeMaxKeys:     c.Rooms.DedupeMaxKeys,
		MaxRooms:          c.Rooms.MaxRooms,
		MaxStateBytes:     int64(c.Rooms.MaxStateBytes),
		CreateRate:        c.Rooms.CreateRate,
		CreateBurst:       c.Rooms.CreateBurst,
	}
	if len(c.Namespaces) > 0 {
		rc.Namespaces = make(map[string]room.Namespace, len(c.Namespaces))
		for name, ns := range c.Namespaces {
			rc.Namespaces[name] = ns.namespace()
		}
	}
	return rc
}

// namespace converts a filled NamespaceConfig.
func (ns *NamespaceConfig) namespace() room.Namespace {
	return room.Namespace{
		HistorySize:        *ns.HistorySize,
		HistoryTTL:         time.Duration(*ns.HistoryTTL),
		IdleTTL:            time.Duration(*ns.IdleTTL),
		NoPresence:         !*ns.Presence,
		MaxMembers:         *ns.MaxMembers,
		MaxMessageBytes:    int(*ns.MaxPayloadBytes),
		MaxPresenceBytes:   int(*ns.MaxPresenceBytes),
		PresenceLarge:      *ns.PresenceLarge,
		Compression:        *ns.Compression,
		StateMaxKeys:       *ns.StateMaxKeys,
		StateMaxBytes:      int(*ns.StateMaxBytes),
		StateMaxValueBytes: int(*ns.StateMaxValueBytes),
		APIPublishOnly:     *ns.APIPublishOnly,
		PublishRate:        *ns.PublishRate,
		PublishBurst:       *ns.PublishBurst,
		RoomPublishRate:    *ns.RoomPublishRate,
		RoomPublishBurst:   *ns.RoomPublishBurst,
	}
}

// Masked returns a copy of c whose secrets (the settings marked secret)
// read "***", one for each value given, for printing.
func (c *Config) Masked() *Config {
	m := *c
	for _, s := range settings {
		if !s.secret {
			continue
		}
		v := s.field(&m)
		switch v.Kind() {
		case reflect.Slice:
			out := make([]string, v.Len())
			for i := range out {
				out[i] = "***"
			}
			v.Set(reflect.ValueOf(out))
		case reflect.String:
			if v.String() != "" {
				v.SetString("***")
			}
		}
	}
	return &m
}

// ResolvedNodeName is the configured node name, else the host name and a random
// suffix, so that a node restarted on the same host is a new member, never
// a stale one.
func (c *Config) ResolvedNodeName() string {
	if c.NodeName != "" {
		return c.NodeName
	}
	h, _ := os.Hostname()
	if h = strings.TrimSpace(h); h == "" {
		h = "roomd"
	}
	var b [2]byte
	_, _ = rand.Read(b[:])
	return h + "-" + hex.EncodeToString(b[:])
}
