package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

// cli runs one command and returns the process's exit status: 0, 1 for an
// error, 2 for a command-line mistake.
func cli(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") && !isHelp(args[0]) {
		args = append([]string{"serve"}, args...) // roomd [flags] is roomd serve [flags]
	}
	var err error
	switch args[0] {
	case "serve":
		err = runServe(args[1:], stdout, stderr)
	case "token":
		err = runToken(args[1:], stdout)
	case "config":
		err = runConfig(args[1:], stdout)
	case "bench":
		err = runBench(args[1:])
	case "dev-cluster":
		err = runDevCluster(args[1:], stdout, stderr)
	case "version":
		err = runVersion(args[1:], stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
	default:
		err = usageError("", fmt.Errorf("unknown command %q", args[0]))
	}
	if err != nil {
		fmt.Fprintln(stderr, "roomd:", err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

const usage = `roomd: a realtime room server.

Usage:
  roomd [serve] [flags]     run a node (roomd serve -h lists every setting)
  roomd token [flags]       mint a token for a user (roomd token -h)
  roomd config check FILE   validate a configuration file, print the effective one
  roomd bench [flags]       load nodes over real sockets, measure loss, order and latency (roomd bench -h)
  roomd dev-cluster [-n 3]  run a local cluster of n nodes to try it out (roomd dev-cluster -h)
  roomd version             print the version
  roomd help                this help

Every setting has a flag, a ROOMD_* variable and a key of the --config file:
see docs/OPERATIONS.md.
`

// usageErr is a command-line mistake, reported with a pointer to help.
type usageErr struct {
	cmd string
	err error
}

func usageError(cmd string, err error) error { return &usageErr{cmd, err} }

func (e *usageErr) Error() string {
	help := "roomd -h"
	if e.cmd != "" {
		help = "roomd " + e.cmd + " -h"
	}
	return fmt.Sprintf("%v (%s for help)", e.err, help)
}

func (e *usageErr) Unwrap() error { return e.err }

func (e *usageErr) Is(target error) bool { return target == errUsage }

// errUsage marks a command-line mistake: main prints it with a hint.
var errUsage = errors.New("usage")
