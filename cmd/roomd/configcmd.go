package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"

	"github.com/roomd/roomd/internal/config"
	"github.com/roomd/roomd/room"
)

// runConfig is `roomd config check FILE`: it validates a configuration file,
// files it names included (keys, certificate), and prints the effective
// configuration, defaults filled and secrets masked. ROOMD_* variables and
// flags are not applied: the file is checked on its own.
func runConfig(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) == 0 {
			return usageError("config", errors.New("missing subcommand"))
		}
		fmt.Fprint(stdout, configUsage)
		return nil
	}
	if args[0] != "check" {
		return usageError("config", fmt.Errorf("unknown subcommand %q", args[0]))
	}
	fs := flag.NewFlagSet("roomd config check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, configUsage)
			return nil
		}
		return usageError("config", err)
	}
	if fs.NArg() != 1 {
		return usageError("config", errors.New("config check takes one FILE"))
	}
	file := fs.Arg(0)
	cfg, err := checkConfigFile(file)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "# %s: OK. Effective configuration, defaults filled, secrets masked:\n", file)
	enc := yaml.NewEncoder(stdout)
	enc.SetIndent(2)
	if err := enc.Encode(cfg.Masked()); err != nil {
		return err
	}
	return enc.Close()
}

// checkConfigFile loads a file with nothing over it, and loads what it
// names: the token keys, the TLS key pair, the cluster's CA file, the room
// settings.
func checkConfigFile(file string) (*config.Config, error) {
	cfg, err := config.Load(config.Sources{File: file})
	if err != nil {
		return nil, err
	}
	if _, _, err := prepare(cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if _, err := cfg.LinkTLS(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	m, err := room.New(cfg.RoomConfig())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	m.Close()
	return cfg, nil
}

const configUsage = `Usage: roomd config check FILE

Validates a configuration file, and the key and certificate files it names,
then prints the effective configuration (every default filled, secrets shown
as ***). Exits 1 with the error otherwise. ROOMD_* variables and flags are
not applied.
`
