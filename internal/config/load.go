package config

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Sources says where Load reads, lowest precedence first.
type Sources struct {
	File  string                      // YAML file; "" for none
	YAML  []byte                      // YAML text, read as a file would be; nil for none
	Env   func(string) (string, bool) // ROOMD_* lookup; nil for none
	Flags []FlagValue                 // flags given, in command-line order
}

// FlagValue is one flag given on the command line.
type FlagValue struct{ Name, Value string }

// Load builds a Config in layers: defaults < file < environment <
// flags. A list (secrets, keys, origins) given by a layer replaces the
// lower layers' list. The result is filled and validated.
func Load(src Sources) (*Config, error) {
	c := &Config{}
	if src.File != "" {
		data, err := os.ReadFile(src.File)
		if err != nil {
			return nil, err
		}
		if err := c.loadYAML(src.File, data); err != nil {
			return nil, err
		}
	}
	if src.YAML != nil {
		if err := c.loadYAML("settings", src.YAML); err != nil {
			return nil, err
		}
	}
	if src.Env != nil {
		if err := c.applyEnv(src.Env); err != nil {
			return nil, err
		}
	}
	if err := c.applyFlags(src.Flags); err != nil {
		return nil, err
	}
	c.fill()
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// File is the file named by --config, else by ROOMD_CONFIG.
func File(flags []FlagValue, env func(string) (string, bool)) string {
	file := ""
	for _, f := range flags {
		if f.Name == "config" {
			file = f.Value
		}
	}
	if file == "" && env != nil {
		file, _ = env("ROOMD_CONFIG")
	}
	return file
}

// applyEnv sets every setting whose ROOMD_* variable is set and not empty.
// A list variable is split at commas.
func (c *Config) applyEnv(env func(string) (string, bool)) error {
	for _, s := range settings {
		if s.flag == "" {
			continue
		}
		name := EnvName(s.flag)
		val, ok := env(name)
		if !ok || strings.TrimSpace(val) == "" {
			continue
		}
		v := s.field(c)
		if s.list() {
			v.Set(reflect.Zero(v.Type()))
			for _, item := range strings.Split(val, ",") {
				if item = strings.TrimSpace(item); item != "" {
					_ = setValue(v, item)
				}
			}
			continue
		}
		if err := setValue(v, val); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// applyFlags applies the flags given, in order: a repeated list flag
// accumulates (replacing the lower layers' list), a repeated scalar flag
// keeps its last value.
func (c *Config) applyFlags(flags []FlagValue) error {
	reset := map[string]bool{}
	for _, f := range flags {
		s := settingByFlag(f.Name)
		if s == nil {
			continue // --config and the like
		}
		v := s.field(c)
		if s.list() && !reset[f.Name] {
			v.Set(reflect.Zero(v.Type()))
			reset[f.Name] = true
		}
		for _, item := range s.items(f.Value) {
			if err := setValue(v, item); err != nil {
				return fmt.Errorf("--%s: %w", f.Name, err)
			}
		}
	}
	return nil
}

// items splits a value of a split setting at commas, dropping empty
// entries; any other value is one item.
func (s *setting) items(val string) []string {
	if !s.split {
		return []string{val}
	}
	var out []string
	for _, item := range strings.Split(val, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// loadYAML reads a configuration file over c. It walks the document itself
// rather than decoding into Config, so that every error names the file,
// the line and the full key, and an unknown or repeated key is an error.
func (c *Config) loadYAML(file string, data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if len(doc.Content) == 0 {
		return nil // empty file
	}
	root := deref(doc.Content[0])
	if isNull(root) {
		return nil
	}
	l := &yamlLoader{file: file, c: c}
	return l.mapping(root, "")
}

type yamlLoader struct {
	file string
	c    *Config
}

func (l *yamlLoader) errorf(n *yaml.Node, key, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if key != "" {
		msg = key + ": " + msg
	}
	return fmt.Errorf("%s:%d: %s", l.file, n.Line, msg)
}

// mapping reads a mapping node whose keys live under prefix.
func (l *yamlLoader) mapping(n *yaml.Node, prefix string) error {
	if n.Kind != yaml.MappingNode {
		return l.errorf(n, prefix, "want a mapping of keys, got %s", describe(n))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		path := joinKey(prefix, k.Value)
		if seen[k.Value] {
			return l.errorf(k, path, "key given twice")
		}
		seen[k.Value] = true
		var err error
		switch s := settingByPath(path); {
		case path == "namespaces":
			err = l.namespaces(v)
		case s != nil:
			err = l.value(v, path, s.field(l.c))
		case isSection(path):
			if !isNull(v) {
				err = l.mapping(v, path)
			}
		default:
			err = l.errorf(k, path, "unknown key%s", suggest(k.Value, childKeys(prefix)))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// namespaces reads the namespaces mapping: name -> namespace settings.
func (l *yamlLoader) namespaces(n *yaml.Node) error {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return l.errorf(n, "namespaces", "want a mapping of namespace names, got %s", describe(n))
	}
	if l.c.Namespaces == nil {
		l.c.Namespaces = map[string]*NamespaceConfig{}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		name := k.Value
		prefix := "namespaces." + name
		if _, dup := l.c.Namespaces[name]; dup {
			return l.errorf(k, prefix, "namespace given twice")
		}
		ns := &NamespaceConfig{}
		l.c.Namespaces[name] = ns
		if isNull(v) {
			continue
		}
		if v.Kind != yaml.MappingNode {
			return l.errorf(v, prefix, "want a mapping of room settings, got %s", describe(v))
		}
		seen := map[string]bool{}
		for j := 0; j+1 < len(v.Content); j += 2 {
			kk, vv := v.Content[j], deref(v.Content[j+1])
			path := prefix + "." + kk.Value
			if seen[kk.Value] {
				return l.errorf(kk, path, "key given twice")
			}
			seen[kk.Value] = true
			s := settingByKey(path)
			if s == nil || !s.ns {
				return l.errorf(kk, path, "unknown key%s", suggest(kk.Value, nsKeys()))
			}
			if err := l.value(vv, path, s.nsField(ns)); err != nil {
				return err
			}
		}
	}
	return nil
}

// value reads a setting's value: a scalar, or for a list a sequence of
// scalars (or one scalar). A null leaves the setting as it is.
func (l *yamlLoader) value(n *yaml.Node, path string, v reflect.Value) error {
	if isNull(n) {
		return nil
	}
	if v.Kind() == reflect.Slice {
		v.Set(reflect.MakeSlice(v.Type(), 0, len(n.Content)))
		items := []*yaml.Node{n}
		if n.Kind == yaml.SequenceNode {
			items = n.Content
		}
		for i, item := range items {
			item = deref(item)
			if item.Kind != yaml.ScalarNode || isNull(item) {
				return l.errorf(item, path, "entry %d: want a string, got %s", i+1, describe(item))
			}
			vals := []string{item.Value}
			if s := settingByPath(path); s != nil {
				vals = s.items(item.Value)
			}
			for _, val := range vals {
				_ = setValue(v, val)
			}
		}
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return l.errorf(n, path, "want a single value, got %s", describe(n))
	}
	if err := setValue(v, n.Value); err != nil {
		return l.errorf(n, path, "%v", err)
	}
	return nil
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

func joinKey(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// settingByPath finds the setting at a full path of the file.
func settingByPath(path string) *setting {
	for _, s := range settings {
		if s.path() == path {
			return s
		}
	}
	return nil
}

// isSection reports whether path holds settings below it.
func isSection(path string) bool {
	for _, s := range settings {
		if strings.HasPrefix(s.path(), path+".") {
			return true
		}
	}
	return false
}

// childKeys lists the keys allowed directly under prefix.
func childKeys(prefix string) []string {
	var keys []string
	for _, s := range settings {
		rest, ok := s.path(), prefix == ""
		if !ok {
			rest, ok = strings.CutPrefix(s.path(), prefix+".")
		}
		if ok {
			first, _, _ := strings.Cut(rest, ".")
			if !slices.Contains(keys, first) {
				keys = append(keys, first)
			}
		}
	}
	if prefix == "" {
		keys = append(keys, "namespaces")
	}
	return keys
}

func nsKeys() []string {
	var keys []string
	for _, s := range settings {
		if s.ns {
			keys = append(keys, s.key)
		}
	}
	return keys
}

// suggest returns ` (did you mean "x"?)` for the closest known key, or a
// list of the keys allowed there.
func suggest(key string, known []string) string {
	best, bestD := "", max(1, min(3, len(key)/3))+1
	for _, k := range known {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return " (known here: " + strings.Join(known, ", ") + ")"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
