package main

import (
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/roomd/roomd/internal/config"
	"github.com/roomd/roomd/internal/testutil"
)

func TestConfigCheckMasksSecrets(t *testing.T) {
	file := testutil.WriteFile(t, "roomd.yaml", `
auth:
  jwt_secrets: [first-very-secret-value-0123456789, second-very-secret-value-012345678]
api_keys: [api-key-value-abcdef]
namespaces:
  chat: {history_size: 200}
`)
	code, out, errOut := runCLI(t, "config", "check", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, secret := range []string{"first-very-secret", "second-very-secret", "api-key-value"} {
		if strings.Contains(out, secret) {
			t.Errorf("output shows a secret (%s):\n%s", secret, out)
		}
	}
	// The output is the effective configuration: valid YAML, defaults
	// filled, secrets as ***, and itself a valid configuration.
	var got struct {
		Auth struct {
			JWTSecrets []string `yaml:"jwt_secrets"`
		} `yaml:"auth"`
		APIKeys []string `yaml:"api_keys"`
		Limits  struct {
			MaxPending int `yaml:"max_pending"`
		} `yaml:"limits"`
		Namespaces map[string]map[string]any `yaml:"namespaces"`
	}
	if err := yaml.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not YAML: %v\n%s", err, out)
	}
	if strings.Join(got.Auth.JWTSecrets, ",") != "***,***" || strings.Join(got.APIKeys, ",") != "***" {
		t.Errorf("secrets not masked one for one: %v %v", got.Auth.JWTSecrets, got.APIKeys)
	}
	if got.Limits.MaxPending != 1024 {
		t.Errorf("max_pending %d: defaults not filled", got.Limits.MaxPending)
	}
	chat := got.Namespaces["chat"]
	if chat["history_size"] != 200 || chat["history_ttl"] != "10m" || chat["presence"] != true {
		t.Errorf("namespace chat not filled: %v", chat)
	}
	again := testutil.WriteFile(t, "effective.yaml", out)
	if c, err := config.Load(config.Sources{File: again}); err != nil {
		t.Errorf("the printed configuration does not load: %v", err)
	} else if c.RoomConfig().Namespaces["chat"] != mustLoad(t, config.Sources{File: file}).RoomConfig().Namespaces["chat"] {
		t.Errorf("the printed configuration differs from the original")
	}
}

func TestConfigCheckErrors(t *testing.T) {
	for _, tc := range []struct {
		yaml, want string
	}{
		{"limits: {max_conns: -1}", "limits.max_conns (--max-conns): must not be negative"},
		{"limtis: {}", `limtis: unknown key (did you mean "limits"?)`},
		{"auth: {public_key_files: [/nonexistent/key.pem]}", "/nonexistent/key.pem"},
		{"tls: {cert: /nonexistent/c.pem, key: /nonexistent/k.pem}", "/nonexistent/c.pem"},
	} {
		file := testutil.WriteFile(t, "bad.yaml", tc.yaml)
		code, out, errOut := runCLI(t, "config", "check", file)
		if code != 1 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 1 and %q", tc.yaml, code, out, errOut, tc.want)
		}
	}
	if code, _, errOut := runCLI(t, "config", "check", filepath.Join(t.TempDir(), "missing.yaml")); code != 1 || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing file: exit %d, %q", code, errOut)
	}
	if code, _, _ := runCLI(t, "config", "check"); code != 2 {
		t.Errorf("no FILE: exit %d, want 2", code)
	}
	if code, _, _ := runCLI(t, "config", "lint", "x"); code != 2 {
		t.Errorf("unknown subcommand: exit %d, want 2", code)
	}
}

func TestExampleConfigPassesCheck(t *testing.T) {
	file := filepath.Join("..", "..", "deploy", "roomd.example.yaml")
	code, out, errOut := runCLI(t, "config", "check", file)
	if code != 0 {
		t.Fatalf("deploy/roomd.example.yaml: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "OK") {
		t.Errorf("output %q", out)
	}
	c := mustLoad(t, config.Sources{File: file})
	if ns := c.RoomConfig().Namespaces["feed"]; !ns.APIPublishOnly || ns.HistorySize != 1000 {
		t.Errorf("feed namespace %+v", ns)
	}
}
