package roomd

import (
	"errors"
	"log/slog"
	"net"

	"github.com/roomd/roomd/internal/config"
)

// Settings is a node's settings: every key of the YAML file of `roomd
// serve`, as docs/OPERATIONS.md lists them, a field each (Settings.Rooms.
// HistorySize is rooms.history_size). Build one with LoadSettings or
// ParseSettings, which fill the defaults; change its fields in Go after
// that if need be (New validates it again).
//
// It is the binary's own settings type, not a copy: a setting added to the
// table is there for embedders too, with the same default and the same
// check. An embedded node ignores tls and log (the program owns its
// listener and its logger: Config.Logger), and takes Config.Addr in place
// of listen.
type Settings = config.Config

// NamespaceSettings is the room settings of one namespace (Settings.
// Namespaces).
type NamespaceSettings = config.NamespaceConfig

// Duration is a settings duration (time.Duration, written "25s" in YAML).
type Duration = config.Duration

// Size is a settings byte count (written "64KiB" in YAML).
type Size = config.Size

// LoadSettings reads a YAML settings file over the defaults, as
// `roomd serve --config file` does (without ROOMD_* variables or flags).
// An empty file name gives the defaults.
func LoadSettings(file string) (*Settings, error) {
	return config.Load(config.Sources{File: file})
}

// ParseSettings reads YAML settings over the defaults. Nil or empty text
// gives the defaults.
func ParseSettings(yaml []byte) (*Settings, error) {
	return config.Load(config.Sources{YAML: yaml})
}

// Config configures a node built by New.
type Config struct {
	// Settings are the node's settings. Nil means the defaults
	// (ParseSettings(nil)): a cluster of one, in dev mode (no token key:
	// every client is anonymous with every permission).
	Settings *Settings
	// Hooks are the application's hook functions, called in process.
	// Nil means none.
	Hooks *Hooks
	// Addr is the address at which the node's handler is served, for a
	// clustered node to tell its peers (unless cluster.advertise_http
	// is set); with an unspecified host the rules of cluster.advertise_http
	// in docs/OPERATIONS.md pick one. Nil is fine for a cluster of one.
	Addr net.Addr
	// Logger receives the node's logs. Nil means slog.Default().
	Logger *slog.Logger
	// Version is what /v1/info reports. Empty means "dev".
	Version string
}

// ErrSettings is returned by New for Settings built by hand rather than
// by LoadSettings or ParseSettings (their defaults are not filled).
var ErrSettings = errors.New("roomd: Settings must come from LoadSettings or ParseSettings")

// ErrNoAddr is returned by New for a clustered node without Config.Addr
// or cluster.advertise_http: its peers could not reach it.
var ErrNoAddr = errors.New("roomd: a clustered node needs Config.Addr or cluster.advertise_http")
