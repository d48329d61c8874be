package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version string

// buildVersion is version, else the module version of the build, else "dev".
func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// runVersion is `roomd version`.
func runVersion(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return usageError("version", fmt.Errorf("unexpected argument %q", args[0]))
	}
	_, err := fmt.Fprintf(stdout, "roomd %s (%s, %s/%s)\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return err
}
