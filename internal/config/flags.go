package config

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
)

// EnvName is the environment variable that stands for a flag.
func EnvName(flagName string) string {
	return "ROOMD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// recorder is the flag.Value of every setting's flag. It checks the value
// at once (so a bad one is reported with its flag) and records it; Load
// applies the recorded flags over the file and the environment.
type recorder struct {
	s     *setting
	given *[]FlagValue
}

func (r *recorder) String() string { return "" }

func (r *recorder) Set(v string) error {
	if err := setValue(r.s.field(&Config{}), v); err != nil {
		return err
	}
	*r.given = append(*r.given, FlagValue{r.s.flag, v})
	return nil
}

func (r *recorder) IsBoolFlag() bool {
	if r == nil || r.s == nil {
		return false
	}
	t := r.s.field(&Config{}).Type()
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Bool
}

// stringRecorder records a flag that is not a setting (--config).
type stringRecorder struct {
	name  string
	given *[]FlagValue
}

func (r *stringRecorder) String() string { return "" }

func (r *stringRecorder) Set(v string) error {
	*r.given = append(*r.given, FlagValue{r.name, v})
	return nil
}

// ConfigFlag is the flag.Value of --config: the file it names lands in
// *given, for File.
func ConfigFlag(given *[]FlagValue) flag.Value { return &stringRecorder{"config", given} }

// AddFlags adds --config and a flag per setting to fs; what is given
// lands in *given.
func AddFlags(fs *flag.FlagSet, given *[]FlagValue) {
	fs.Var(&stringRecorder{"config", given}, "config", "YAML configuration file (ROOMD_CONFIG)")
	for _, s := range settings {
		if s.flag != "" {
			fs.Var(&recorder{s, given}, s.flag, s.usage)
		}
	}
}

// PrintFlags writes the settings' help: flag, variable, key, default.
func PrintFlags(w io.Writer) {
	fmt.Fprintf(w, "  --config FILE\n        YAML configuration file (env ROOMD_CONFIG)\n")
	for _, sec := range sections {
		fmt.Fprintf(w, "\n%s:\n", sec.title)
		for i := range sec.keys {
			s := &sec.keys[i]
			if s.flag == "" {
				continue
			}
			fmt.Fprintf(w, "  --%s%s\n        %s\n        env %s, key %s", s.flag, s.placeholder(), s.usage, EnvName(s.flag), s.path())
			if d := s.defaultText(); d != "" {
				fmt.Fprintf(w, ", default %s", d)
			}
			fmt.Fprintln(w)
		}
	}
}

// placeholder names a flag's value in help.
func (s *setting) placeholder() string {
	v := s.field(&Config{})
	if v.Kind() == reflect.Pointer {
		v = reflect.New(v.Type().Elem()).Elem()
	}
	switch {
	case v.Type() == durationType:
		return " DURATION"
	case v.Type() == sizeType:
		return " SIZE"
	case v.Kind() == reflect.Bool:
		return "[=BOOL]"
	case v.Kind() == reflect.Int:
		return " N"
	case v.Kind() == reflect.Float64:
		return " RATE"
	case strings.HasSuffix(s.key, "file") || strings.HasSuffix(s.key, "files") || strings.HasPrefix(s.key, "tls.") || s.key == "cluster.tls_ca":
		return " FILE"
	case s.key == "listen" || s.key == "cluster.bind" || s.key == "cluster.advertise" || s.key == "cluster.advertise_http" || s.key == "cluster.join":
		return " HOST:PORT"
	}
	return " STRING"
}

// defaultText is the default as help and docs show it.
func (s *setting) defaultText() string {
	if s.shown != "" {
		return s.shown
	}
	return s.def
}

// parseSize parses byte sizes such as 65536, 64KiB, 1MiB.
func parseSize(v string) (int, error) {
	v = strings.TrimSpace(v)
	num, mult := v, 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000_000}, {"GB", 1000_000_000}, {"B", 1}} {
		if strings.HasSuffix(v, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(v, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || n > math.MaxInt32/mult {
		return 0, &sizeError{v}
	}
	return n * mult, nil
}

type sizeError struct{ v string }

func (e *sizeError) Error() string {
	return "invalid size " + strconv.Quote(e.v) + " (e.g. 65536, 64KiB, 1MiB; under 2GiB)"
}

// OSEnv looks a variable up in the process environment.
func OSEnv(name string) (string, bool) { return os.LookupEnv(name) }
