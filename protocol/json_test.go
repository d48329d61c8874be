package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func TestAppendJSON(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"absent", nil, `null`},
		{"nil", hx(t, "c0"), `null`},
		{"true", hx(t, "c3"), `true`},
		{"false", hx(t, "c2"), `false`},
		{"fixint", hx(t, "7f"), `127`},
		{"negative fixint", hx(t, "e0"), `-32`},
		{"uint8", hx(t, "cc ff"), `255`},
		{"uint16", hx(t, "cd ff ff"), `65535`},
		{"uint32", hx(t, "ce ff ff ff ff"), `4294967295`},
		{"uint64 safe", hx(t, "cf 00 1f ff ff ff ff ff ff"), `9007199254740991`},
		{"uint64 beyond 2^53", hx(t, "cf 00 20 00 00 00 00 00 00"), `"9007199254740992"`},
		{"uint64 max", hx(t, "cf ff ff ff ff ff ff ff ff"), `"18446744073709551615"`},
		{"int8", hx(t, "d0 80"), `-128`},
		{"int16", hx(t, "d1 80 00"), `-32768`},
		{"int32", hx(t, "d2 80 00 00 00"), `-2147483648`},
		{"int64 safe", hx(t, "d3 ff e0 00 00 00 00 00 01"), `-9007199254740991`},
		{"int64 beyond -2^53", hx(t, "d3 ff e0 00 00 00 00 00 00"), `"-9007199254740992"`},
		{"int64 min", hx(t, "d3 80 00 00 00 00 00 00 00"), `"-9223372036854775808"`},
		{"float64", mp(t, 1.5), `1.5`},
		{"float64 integral", mp(t, 3.0), `3`},
		{"float64 small", mp(t, 1e-9), `1e-9`},
		{"float64 large", mp(t, 1e21), `1e+21`},
		{"float64 negative zero", mp(t, math.Copysign(0, -1)), `-0`},
		{"float32", mp(t, float32(0.1)), `0.1`},
		{"NaN", mp(t, math.NaN()), `null`},
		{"+Inf", mp(t, math.Inf(1)), `null`},
		{"-Inf float32", mp(t, float32(math.Inf(-1))), `null`},
		{"empty str", hx(t, "a0"), `""`},
		{"str", mp(t, "héllo"), `"héllo"`},
		{"str escapes", mp(t, "a\"b\\c\nd\re\tf\x00g\x1fh</>&"), `"a\"b\\c\nd\re\tf\u0000g\u001fh</>&"`},
		{"str line separators", mp(t, "a\u2028b\u2029c"), `"a\u2028b\u2029c"`},
		{"str invalid UTF-8", hx(t, "a4 61 ff fe 62"), `"a\ufffd\ufffdb"`},
		{"str8", mp(t, strings.Repeat("x", 40)), `"` + strings.Repeat("x", 40) + `"`},
		{"bin", mp(t, []byte("hello")), `"aGVsbG8="`},
		{"bin empty", hx(t, "c4 00"), `""`},
		{"array", mp(t, []any{1, "a", nil, true, []any{}}), `[1,"a",null,true,[]]`},
		{"empty map", hx(t, "80"), `{}`},
		{"map order kept", hx(t, "82 a1 62 01 a1 61 02"), `{"b":1,"a":2}`},
		{"nested", hx(t, "81 a1 61 92 81 a1 62 c0 90"), `{"a":[{"b":null},[]]}`},
		{"int keys", hx(t, "83 01 a1 61 ff a1 62 cf ff ff ff ff ff ff ff ff c3"), `{"1":"a","-1":"b","18446744073709551615":true}`},
		{"scalar keys", hx(t, "85 c0 01 c3 02 c4 01 00 03 cb 3f f8 00 00 00 00 00 00 04 cb 7f f8 00 00 00 00 00 01 05"),
			`{"null":1,"true":2,"AA==":3,"1.5":4,"NaN":5}`},
		{"key escaped", hx(t, "81 a2 22 0a 01"), `{"\"\n":1}`},
		{"deepest allowed", deepArray(MaxNesting), strings.Repeat("[", MaxNesting) + strings.Repeat("]", MaxNesting)},
		{"map16", mp(t, map[string]int{"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7, "h": 8,
			"i": 9, "j": 10, "k": 11, "l": 12, "m": 13, "n": 14, "o": 15, "p": 16}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendJSON([]byte("prefix:"), tt.in)
			if err != nil {
				t.Fatalf("AppendJSON(% x): %v", tt.in, err)
			}
			if !bytes.HasPrefix(got, []byte("prefix:")) {
				t.Fatalf("prefix lost: %s", got)
			}
			got = got[len("prefix:"):]
			if !json.Valid(got) {
				t.Fatalf("invalid JSON %s", got)
			}
			if tt.want == "" { // checked against the library's reading
				var want, have any
				unraw(t, tt.in, &want)
				if err := json.Unmarshal(got, &have); err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(want) != fmt.Sprint(have) {
					t.Fatalf("got %s, library reads %v", got, want)
				}
				return
			}
			if string(got) != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// deepArray is n nested empty arrays: [[[...]]].
func deepArray(n int) []byte {
	b := bytes.Repeat([]byte{0x91}, n)
	b[n-1] = 0x90
	return b
}

func TestAppendJSONErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"ext", hx(t, "d4 01 00")},
		{"ext in array", hx(t, "92 01 c7 01 05 00")},
		{"ext as key", hx(t, "81 d4 01 00 01")},
		{"array key", hx(t, "81 90 01")},
		{"map key", hx(t, "81 80 01")},
		{"too deep", deepArray(MaxNesting + 1)},
		{"too deep in a map", append([]byte{0x81, 0xa1, 0x61}, deepArray(MaxNesting)...)},
		{"truncated str", hx(t, "a3 61 62")},
		{"truncated array", hx(t, "93 01 02")},
		{"truncated map value", hx(t, "81 a1 61")},
		{"truncated key", hx(t, "81 a3 61")},
		{"truncated float", hx(t, "cb 00 00")},
		{"truncated header", hx(t, "da 00")},
		{"huge array", hx(t, "dd ff ff ff ff 01")},
		{"bad byte", hx(t, "c1")},
		{"bad byte as key", hx(t, "81 c1 01")},
		{"trailing", hx(t, "01 02")},
		{"trailing after map", hx(t, "80 c0")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendJSON([]byte("keep"), tt.in)
			wantCode(t, err, CodeBadRequest)
			if string(got) != "keep" {
				t.Fatalf("dst changed on error: %q", got)
			}
		})
	}
}

func TestFromJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // hex of the msgpack
	}{
		{"null", `null`, "c0"},
		{"true", ` true `, "c3"},
		{"false", "\n\tfalse\r", "c2"},
		{"zero", `0`, "00"},
		{"negative zero", `-0`, "00"},
		{"fixint", `127`, "7f"},
		{"uint8", `128`, "cc 80"},
		{"uint16", `65535`, "cd ff ff"},
		{"uint32", `65536`, "ce 00 01 00 00"},
		{"uint64", `18446744073709551615`, "cf ff ff ff ff ff ff ff ff"},
		{"beyond uint64", `18446744073709551616`, "cb 43 f0 00 00 00 00 00 00"},
		{"negative fixint", `-32`, "e0"},
		{"int8", `-33`, "d0 df"},
		{"int16", `-129`, "d1 ff 7f"},
		{"int32", `-32769`, "d2 ff ff 7f ff"},
		{"int64 min", `-9223372036854775808`, "d3 80 00 00 00 00 00 00 00"},
		{"beyond int64", `-9223372036854775809`, "cb c3 e0 00 00 00 00 00 00"},
		{"float", `1.5`, "cb 3f f8 00 00 00 00 00 00"},
		{"integral float", `2.0`, "cb 40 00 00 00 00 00 00 00"},
		{"exponent", `1e2`, "cb 40 59 00 00 00 00 00 00"},
		{"exponent sign", `-25E-1`, "cb c0 04 00 00 00 00 00 00"},
		{"string", `"hi"`, "a2 68 69"},
		{"string utf-8", `"é"`, "a2 c3 a9"},
		{"string escapes", `"a\"\\\/\b\f\n\r\tz"`, "aa 61 22 5c 2f 08 0c 0a 0d 09 7a"},
		{"string \\u", `"\u00e9\u0041"`, "a3 c3 a9 41"},
		{"surrogate pair", `"\ud83d\ude00"`, "a4 f0 9f 98 80"},
		{"lone surrogate", `"\ud83dx"`, "a4 ef bf bd 78"},
		{"lone low surrogate", `"\ude00"`, "a3 ef bf bd"},
		{"high then non-low", `"\ud83d\u0041"`, "a4 ef bf bd 41"},
		{"invalid UTF-8", "\"a\xffb\"", "a5 61 ef bf bd 62"},
		{"str8", `"` + strings.Repeat("x", 32) + `"`, "d9 20" + strings.Repeat(" 78", 32)},
		{"empty array", `[]`, "90"},
		{"empty object", ` { } `, "80"},
		{"array", `[1, "a", null, [true]]`, "94 01 a1 61 c0 91 c3"},
		{"object order kept", `{"b":1,"a":{"c":[]}}`, "82 a1 62 01 a1 61 81 a1 63 90"},
		{"duplicate keys kept", `{"a":1,"a":2}`, "82 a1 61 01 a1 61 02"},
		{"array16", "[" + strings.TrimSuffix(strings.Repeat("0,", 16), ",") + "]", "dc 00 10" + strings.Repeat(" 00", 16)},
		{"object16 nested", `[{` + objKeys(16) + `},1]`, "92 de 00 10" + objKeysHex(16) + " 01"},
		{"deepest allowed", strings.Repeat("[", MaxNesting) + strings.Repeat("]", MaxNesting),
			strings.TrimSpace(strings.Repeat("91 ", MaxNesting-1) + "90")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromJSON([]byte(tt.in))
			if err != nil {
				t.Fatalf("FromJSON(%s): %v", tt.in, err)
			}
			if want := hx(t, tt.want); !bytes.Equal(got, want) {
				t.Fatalf("got  % x\nwant % x", []byte(got), want)
			}
			if err := ValidatePayload(got); err != nil {
				t.Fatalf("result is not a valid payload: %v", err)
			}
		})
	}
}

func objKeys(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"%c":%d`, 'a'+i, i)
	}
	return b.String()
}

func objKeysHex(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, " a1 %02x %02x", 'a'+i, i)
	}
	return b.String()
}

func TestFromJSONLarge(t *testing.T) {
	// 70,000 elements need an array32 header; the nested object needs map16.
	in := "[" + strings.TrimSuffix(strings.Repeat(`{"k":1},`, 70000), ",") + "]"
	got, err := FromJSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(got, hx(t, "dd 00 01 11 70 81 a1 6b 01")) {
		t.Fatalf("got % x...", []byte(got[:16]))
	}
	back, err := AppendJSON(nil, got)
	if err != nil || string(back) != in {
		t.Fatalf("round trip differs (%v)", err)
	}
}

func TestFromJSONErrors(t *testing.T) {
	tests := []string{
		``, ` `, `nul`, `nulls`, `True`, `tru`, `+1`, `01`, `-`, `1.`, `.5`, `1e`, `1e+`, `0x10`,
		`1e400`, `-1e400`, `NaN`, `Infinity`,
		`"abc`, `"\x"`, `"\u12"`, `"\u12g4"`, "\"a\x01\"", "\"\t\"", `'a'`,
		`[`, `[1`, `[1,`, `[1,]`, `[,1]`, `[1 2]`, `]`, `[}`,
		`{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{a:1}`, `{1:1}`, `{"a" 1}`, `{"a":1 "b":2}`, `{"a":1]`,
		`1 2`, `{} {}`, `[]x`, `"a" "b"`,
		strings.Repeat("[", MaxNesting+1) + strings.Repeat("]", MaxNesting+1),
		strings.Repeat(`{"a":`, MaxNesting+1) + "1" + strings.Repeat("}", MaxNesting+1),
		strings.Repeat("[", 100000),
	}
	for _, in := range tests {
		name := in
		if len(name) > 20 {
			name = name[:20] + "…"
		}
		t.Run(name, func(t *testing.T) {
			got, err := FromJSON([]byte(in))
			if err == nil {
				t.Fatalf("FromJSON(%q) = % x, want an error", in, []byte(got))
			}
			wantCode(t, err, CodeBadRequest)
		})
	}
}

// TestJSONRoundTrip: msgpack written by the library from Go values comes out
// as the JSON encoding/json writes for the same values, and back.
func TestJSONRoundTrip(t *testing.T) {
	values := []any{
		map[string]any{"text": "hello", "n": 42, "neg": -7, "f": 0.25, "ok": true, "none": nil},
		[]any{"a", []any{1, 2, []any{3}}, map[string]any{"x": map[string]any{"y": "z"}}},
		map[string]any{"unicode": "日本語 ✓", "ctl": "\x01\x7f", "quote": `"'`},
		int64(MaxSafeInteger), int64(-MaxSafeInteger), 1e300, -1e-300, "",
	}
	for _, v := range values {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := AppendJSON(nil, mp(t, v))
		if err != nil {
			t.Fatal(err)
		}
		if !jsonSame(t, got, want) {
			t.Errorf("AppendJSON(%v) = %s, encoding/json writes %s", v, got, want)
		}
		r, err := FromJSON(want)
		if err != nil {
			t.Fatal(err)
		}
		again, err := AppendJSON(nil, r)
		if err != nil {
			t.Fatal(err)
		}
		if !jsonSame(t, again, want) {
			t.Errorf("FromJSON then AppendJSON of %s = %s", want, again)
		}
	}
}

// jsonSame reports whether two JSON texts hold the same value.
func jsonSame(t testing.TB, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return fmt.Sprintf("%#v", va) == fmt.Sprintf("%#v", vb)
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", "a\"b", "\x00\x1f\x7f", "é✓😀", "\xff", "a\u2028", "<script>"} {
		got := AppendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q → %s: %v", s, got, err)
		}
		if want := validUTF8(s); back != want {
			t.Fatalf("%q → %s → %q", s, got, back)
		}
	}
}

// FuzzJSON feeds the same bytes to both directions. As JSON: FromJSON must
// accept exactly what encoding/json accepts (bar nesting and number range),
// and its result, written back with AppendJSON, must hold the value
// encoding/json reads from the input. As msgpack: AppendJSON must accept
// exactly the payloads ValidatePayload accepts (bar map and array keys), and
// write valid JSON.
func FuzzJSON(f *testing.F) {
	for _, s := range []string{
		`null`, `true`, `[1,-2,3.5,"x",{"a":[]}]`, `{"b":1,"a":{"c":null}}`, `"\ud83d\ude00\u0041\n"`,
		`9007199254740993`, `-9223372036854775808`, `18446744073709551615`, `1e308`, `1e-320`, `-0.0`,
		`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`, "\"\xff\"", `{"a":1,"a":2}`,
	} {
		f.Add([]byte(s))
	}
	for _, s := range seedMessages(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fuzzFromJSON(t, in)
		fuzzAppendJSON(t, in)
	})
}

func fuzzFromJSON(t *testing.T, in []byte) {
	r, err := FromJSON(in)
	valid := json.Valid(in)
	if err != nil {
		var pe *Error
		if !errors.As(err, &pe) || pe.Code != CodeBadRequest {
			t.Fatalf("FromJSON error %v is not a bad_request *Error", err)
		}
		if valid && !strings.Contains(pe.Msg, "nested deeper") && !strings.Contains(pe.Msg, "out of range") {
			t.Fatalf("FromJSON(%q) refused valid JSON: %v", in, err)
		}
		return
	}
	if !valid {
		t.Fatalf("FromJSON(%q) accepted invalid JSON: % x", in, []byte(r))
	}
	if err := ValidatePayload(r); err != nil {
		t.Fatalf("FromJSON(%q) = % x, not a valid payload: %v", in, []byte(r), err)
	}
	out, err := AppendJSON(nil, r)
	if err != nil {
		t.Fatalf("AppendJSON(FromJSON(%q)): %v", in, err)
	}
	if !json.Valid(out) {
		t.Fatalf("AppendJSON wrote invalid JSON %q", out)
	}
	var want, got any
	if err := unmarshalNumbers(in, &want); err != nil {
		t.Fatal(err)
	}
	if err := unmarshalNumbers(out, &got); err != nil {
		t.Fatal(err)
	}
	if msg := sameValue(want, got); msg != "" {
		t.Fatalf("%q → %q: %s", in, out, msg)
	}
	// Written JSON is a fixed point after one more round.
	r2, err := FromJSON(out)
	if err != nil {
		t.Fatalf("FromJSON(%q): %v", out, err)
	}
	out2, _ := AppendJSON(nil, r2)
	r3, _ := FromJSON(out2)
	out3, _ := AppendJSON(nil, r3)
	if !bytes.Equal(out2, out3) {
		t.Fatalf("not a fixed point: %q then %q", out2, out3)
	}
}

func unmarshalNumbers(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

// sameValue compares what encoding/json read from the input (want) with what
// it read from AppendJSON's output (got), allowing for the transcoding's
// rules: integers beyond ±2^53 become strings, numbers keep their value.
func sameValue(want, got any) string {
	switch w := want.(type) {
	case json.Number:
		s := string(w)
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return sameInt(strconv.FormatInt(i, 10), i > MaxSafeInteger || i < -MaxSafeInteger, got)
			}
			if u, err := strconv.ParseUint(s, 10, 64); err == nil {
				return sameInt(strconv.FormatUint(u, 10), u > MaxSafeInteger, got)
			}
		}
		fw, _ := strconv.ParseFloat(s, 64)
		g, ok := got.(json.Number)
		if !ok {
			return fmt.Sprintf("number %s became %#v", s, got)
		}
		if fg, err := strconv.ParseFloat(string(g), 64); err != nil || fg != fw {
			return fmt.Sprintf("number %s became %s", s, g)
		}
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("object %v became %#v", w, got)
		}
		for k, v := range w {
			if msg := sameValue(v, g[k]); msg != "" {
				return k + ": " + msg
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("array %v became %#v", w, got)
		}
		for i := range w {
			if msg := sameValue(w[i], g[i]); msg != "" {
				return fmt.Sprintf("[%d]: %s", i, msg)
			}
		}
	default:
		if want != got {
			return fmt.Sprintf("%#v became %#v", want, got)
		}
	}
	return ""
}

func sameInt(dec string, beyond bool, got any) string {
	switch g := got.(type) {
	case string:
		if beyond && g == dec {
			return ""
		}
	case json.Number:
		if !beyond && string(g) == dec {
			return ""
		}
	}
	return fmt.Sprintf("integer %s (beyond 2^53: %v) became %#v", dec, beyond, got)
}

func fuzzAppendJSON(t *testing.T, in []byte) {
	out, err := AppendJSON(nil, in)
	verr := ValidatePayload(in)
	if err != nil {
		var pe *Error
		if !errors.As(err, &pe) || pe.Code != CodeBadRequest {
			t.Fatalf("AppendJSON error %v is not a bad_request *Error", err)
		}
		if out != nil {
			t.Fatalf("AppendJSON wrote %q and failed", out)
		}
		if verr == nil && !strings.Contains(pe.Msg, "as a map key") {
			t.Fatalf("AppendJSON(% x) refused a valid payload: %v", in, err)
		}
		return
	}
	if verr != nil {
		t.Fatalf("AppendJSON(% x) accepted an invalid payload (%v): %s", in, verr, out)
	}
	if !json.Valid(out) {
		t.Fatalf("AppendJSON(% x) wrote invalid JSON %q", in, out)
	}
	if len(in) > 0 && strKeysOnly(in, 0) > 0 {
		// Where every key is a string and no integer is beyond 2^53, the
		// library reads the same value from the msgpack as encoding/json
		// from the JSON.
		var fromMsgpack any
		if msgpack.Unmarshal(in, &fromMsgpack) == nil {
			if ref, ok := jsonRef(fromMsgpack); ok {
				want, err := json.Marshal(ref)
				if err == nil && !jsonSame(t, out, want) {
					t.Fatalf("AppendJSON(% x) = %s, want %s", in, out, want)
				}
			}
		}
	}
}

// strKeysOnly walks the valid payload at b[off] and returns the offset past
// it, or 0 if some map key in it is not a str.
func strKeysOnly(b []byte, off int) int {
	c, k, body, n, _ := head(b, off)
	switch k {
	case kindArray, kindMap:
		off = body
		for i := uint64(0); i < n; i++ {
			if k == kindMap && i%2 == 0 {
				if c, _, _, _, _ = head(b, off); !isStr(c) {
					return 0
				}
			}
			if off = strKeysOnly(b, off); off == 0 {
				return 0
			}
		}
		return off
	}
	_ = c
	return body + int(n)
}

// jsonRef converts what the msgpack library decoded into what encoding/json
// should write for it, when the transcoding rules make no difference.
func jsonRef(v any) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			r, ok := jsonRef(e)
			if !ok {
				return nil, false
			}
			k = validUTF8(k)
			if _, dup := m[k]; dup { // two keys alike once made valid
				return nil, false
			}
			m[k] = r
		}
		return m, true
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			r, ok := jsonRef(e)
			if !ok {
				return nil, false
			}
			a[i] = r
		}
		return a, true
	case string:
		return validUTF8(x), true
	case []byte, nil, bool:
		return x, true
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case float32:
		f := float64(x)
		return x, !math.IsNaN(f) && !math.IsInf(f, 0)
	case int8, int16, int32, uint8, uint16, uint32:
		return x, true
	case int64:
		return x, x <= MaxSafeInteger && x >= -MaxSafeInteger
	case uint64:
		return x, x <= MaxSafeInteger
	}
	return nil, false
}

// validUTF8 replaces each invalid byte of s by U+FFFD, as encoding/json does
// (strings.ToValidUTF8 replaces runs).
func validUTF8(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}

// jsonPayload is a typical structured payload, about 150 bytes.
func jsonPayload(b *testing.B) Raw {
	return Raw(mp(b, map[string]any{
		"text":  "hello everyone, the meeting starts in five minutes",
		"from":  map[string]any{"id": "user-42", "name": "Ann", "color": 0x336699},
		"tags":  []any{"ann", "mtg", 3, true, nil},
		"pos":   []any{12.5, -3.25},
		"reply": map[string]any{"seq": 1234, "quote": []byte("meeting")},
	}))
}

// BenchmarkAppendJSON transcodes a typical payload into a reused buffer: what
// an SSE event costs once per event.
func BenchmarkAppendJSON(b *testing.B) {
	p := jsonPayload(b)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	buf := make([]byte, 0, 512)
	for b.Loop() {
		var err error
		if buf, err = AppendJSON(buf[:0], p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFromJSON converts a typical HTTP API body.
func BenchmarkFromJSON(b *testing.B) {
	in, err := AppendJSON(nil, jsonPayload(b))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FromJSON(in); err != nil {
			b.Fatal(err)
		}
	}
}
