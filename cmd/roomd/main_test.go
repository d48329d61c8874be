package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/roomd/roomd/internal/config"
	"github.com/roomd/roomd/internal/testutil"
)

func TestMain(m *testing.M) {
	// The dev-cluster test runs this binary as roomd.
	if os.Getenv(envRunAsRoomd) == "1" {
		os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
	}
	// os/signal's delivery goroutine lives for the rest of the process once
	// a test has called signal.Notify.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("os/signal.loop"))
}

// envRunAsRoomd makes the test binary run as roomd, its arguments being
// roomd's.
const envRunAsRoomd = "ROOMD_TEST_RUN_AS_ROOMD"

// runCLI runs roomd with args and returns its exit status and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelpListsSubcommands(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		code, out, _ := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d", args, code)
		}
		for _, sub := range []string{"serve", "token", "config check", "version"} {
			if !strings.Contains(out, "roomd "+sub) {
				t.Errorf("%v: help does not list %q:\n%s", args, sub, out)
			}
		}
	}
}

// serve -h prints every setting's help (config.PrintFlags).
func TestServeHelpListsEverySetting(t *testing.T) {
	code, out, _ := runCLI(t, "serve", "-h")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var want strings.Builder
	config.PrintFlags(&want)
	if !strings.Contains(out, want.String()) {
		t.Errorf("serve -h lacks the settings' help:\n%s", out)
	}
}

func TestVersionAndUnknownCommand(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "roomd ") {
		t.Fatalf("version: exit %d, %q", code, out)
	}
	code, _, errOut := runCLI(t, "frobnicate")
	if code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: exit %d, %q", code, errOut)
	}
	code, _, errOut = runCLI(t, "--no-such-flag")
	if code != 2 || !strings.Contains(errOut, "no-such-flag") {
		t.Fatalf("unknown flag: exit %d, %q", code, errOut)
	}
}

// checkFor polls a condition instead of sleeping (internal/testutil).
var checkFor = testutil.CheckFor

// mustLoad loads a node's configuration, or fails the test.
func mustLoad(t *testing.T, src config.Sources) *config.Config {
	t.Helper()
	c, err := config.Load(src)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	return c
}
