package wsframe

import (
	"net/http"
	"testing"
)

func TestDeflateOffered(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   bool
	}{
		// What browsers send, and the forms RFC 7692 allows.
		{[]string{"permessage-deflate; client_max_window_bits"}, true},
		{[]string{"permessage-deflate"}, true},
		{[]string{"Permessage-Deflate ;\tclient_max_window_bits=10 ; server_no_context_takeover"}, true},
		{[]string{"permessage-deflate; client_no_context_takeover; server_no_context_takeover"}, true},
		{[]string{"permessage-deflate; server_max_window_bits=15"}, true},
		{[]string{`permessage-deflate; client_max_window_bits="12"`}, true},
		{[]string{`permessage-deflate; server_max_window_bits="1\5"`}, true},
		{[]string{"x-webkit-deflate-frame", "permessage-deflate"}, true},
		{[]string{"foo; bar=1, permessage-deflate"}, true},
		{[]string{", ,permessage-deflate,"}, true},
		// The first offer declined, the second accepted.
		{[]string{"permessage-deflate; server_max_window_bits=10, permessage-deflate"}, true},
		{[]string{"permessage-deflate; bogus, permessage-deflate; client_max_window_bits"}, true},
		// Declined offers.
		{nil, false},
		{[]string{""}, false},
		{[]string{"x-webkit-deflate-frame"}, false},
		{[]string{"permessage-deflate; server_max_window_bits=10"}, false},
		{[]string{"permessage-deflate; server_max_window_bits"}, false},
		{[]string{"permessage-deflate; client_max_window_bits=16"}, false},
		{[]string{"permessage-deflate; client_max_window_bits=7"}, false},
		{[]string{"permessage-deflate; client_max_window_bits=010"}, false},
		{[]string{"permessage-deflate; client_max_window_bits=+9"}, false},
		{[]string{"permessage-deflate; client_max_window_bits="}, false},
		{[]string{"permessage-deflate; server_no_context_takeover=1"}, false},
		{[]string{"permessage-deflate; client_no_context_takeover; client_no_context_takeover"}, false},
		{[]string{"permessage-deflate; Client_Max_Window_Bits; client_max_window_bits=9"}, false},
		{[]string{"permessage-deflate; unknown"}, false},
		{[]string{"permessage-deflate; x=y"}, false},
		// Malformed headers offer nothing, not even a valid offer beside.
		{[]string{"permessage-deflate, ;"}, false},
		{[]string{"permessage-deflate", "; x"}, false},
		{[]string{"permessage-deflate;"}, false},
		{[]string{"permessage-deflate; ;client_max_window_bits"}, false},
		{[]string{"permessage-deflate x"}, false},
		{[]string{"permessage-deflate; client_max_window_bits=\"10"}, false},
		{[]string{"permessage-deflate; client_max_window_bits=\"10\\"}, false},
		{[]string{`permessage-deflate; client_max_window_bits="1 0"`}, false},
		{[]string{`permessage-deflate; client_max_window_bits=""`}, false},
		{[]string{`permessage-deflate; client_max_window_bits="10"x`}, false},
		{[]string{"permessage-deflate; client_max_window_bits=10=11"}, false},
		{[]string{"permessage-deflate\x00"}, false},
		{[]string{"permessage-deflate; client_max_window_bits=1\xff"}, false},
		{[]string{"\"permessage-deflate\""}, false},
	} {
		h := http.Header{}
		for _, v := range tc.values {
			h.Add("Sec-WebSocket-Extensions", v)
		}
		if got := DeflateOffered(h); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.values, got, tc.want)
		}
	}
}

// FuzzParseExtensions: whatever the header, the parser returns (no panic,
// no hang), and what it accepts holds only token names and token values.
func FuzzParseExtensions(f *testing.F) {
	for _, s := range []string{
		"permessage-deflate; client_max_window_bits",
		`permessage-deflate; server_max_window_bits="15", foo`,
		"a;b=c;d, e ,,f",
		`x; y="a\"b"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		offers, ok := parseExtensions([]string{s})
		if !ok {
			return
		}
		for _, o := range offers {
			if !isToken(o.name) {
				t.Fatalf("extension %q", o.name)
			}
			for _, p := range o.params {
				if !isToken(p.name) || p.hasValue && !isToken(p.value) {
					t.Fatalf("parameter %q=%q", p.name, p.value)
				}
			}
		}
		DeflateOffered(http.Header{"Sec-Websocket-Extensions": {s}})
	})
}
