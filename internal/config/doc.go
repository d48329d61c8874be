// Package config is a roomd node's configuration: one table of settings
// (settings.go), each a key of the YAML file, a flag and a ROOMD_* variable,
// read from, in rising precedence, defaults, a YAML file (--config,
// ROOMD_CONFIG), the variables and the flags (Load). The table also drives
// fill, validation, `roomd serve -h` (PrintFlags) and the masking of
// secrets in `roomd config check` (Config.Masked); a test checks that
// docs/OPERATIONS.md names every entry.
//
// A filled Config gives each layer its configuration: ServerConfig,
// RoomConfig, AuthConfig and ClusterConfig (cluster.go, which also checks
// the cluster keys).
//
// It knows the server, room, auth and cluster packages' configuration types,
// never their insides, and starts nothing: cmd/roomd wires the layers
// together.
package config
