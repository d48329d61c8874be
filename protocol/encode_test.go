package protocol

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func TestRawEncoding(t *testing.T) {
	type holder struct {
		D Raw `msgpack:"d"`
	}
	tests := []struct {
		name string
		raw  Raw
		want string // the encoding of {d: raw}
	}{
		{"nil Raw is msgpack nil", nil, "81 a1 64 c0"},
		{"empty Raw is msgpack nil", Raw{}, "81 a1 64 c0"},
		{"Nil", Nil, "81 a1 64 c0"},
		{"a value is written as is", Raw{0x92, 0x01, 0x02}, "81 a1 64 92 01 02"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Encode(&holder{D: tc.raw})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, hx(t, tc.want)) {
				t.Fatalf("got % x, want %s", b, tc.want)
			}
		})
	}
	// Top level, and as an element of slices and maps.
	if b := MustEncode(Raw(nil)); !bytes.Equal(b, []byte{0xc0}) {
		t.Fatalf("Encode(Raw(nil)) = % x", b)
	}
	if b := MustEncode([]Raw{nil, {0x01}}); !bytes.Equal(b, hx(t, "92 c0 01")) {
		t.Fatalf("Encode([]Raw) = % x", b)
	}
	if b := MustEncode(map[string]Raw{"k": nil}); !bytes.Equal(b, hx(t, "81 a1 6b c0")) {
		t.Fatalf("Encode(map[string]Raw) = % x", b)
	}
	// Msg.D is always present, even when nil.
	var f Frame
	if err := DecodeFrame(MustEncode(&Msg{T: TypeMsg, R: "a", S: 1}), &f); err != nil || !bytes.Equal(f.D, Nil) {
		t.Fatalf("Msg with nil D: %+v, %v", f, err)
	}
}

func TestRawDecodeMsgpack(t *testing.T) {
	var h struct {
		D Raw `msgpack:"d"`
		X int `msgpack:"x"`
	}
	unraw(t, mp(t, map[string]any{"d": []any{1, "a"}, "x": 3}), &h)
	if !bytes.Equal(h.D, mp(t, []any{1, "a"})) || h.X != 3 {
		t.Fatalf("got %+v", h)
	}
	// The library handles nil itself before asking Raw: the field ends up
	// empty, which IsNil reports and which encodes as nil again.
	unraw(t, mp(t, map[string]any{"d": nil}), &h)
	if !h.D.IsNil() || !bytes.Equal(MustEncode(h.D), Nil) {
		t.Fatalf("nil d decodes as % x", []byte(h.D))
	}
}

func TestRawIsNil(t *testing.T) {
	tests := []struct {
		r    Raw
		want bool
	}{
		{nil, true},
		{Raw{}, true},
		{Raw{0xc0}, true},
		{Nil, true},
		{Raw{0x00}, false},
		{Raw{0xc2}, false},
		{Raw{0x90}, false},
		{Raw{0xa0}, false},
		{Raw{0x91, 0xc0}, false},
	}
	for _, tc := range tests {
		if got := tc.r.IsNil(); got != tc.want {
			t.Errorf("Raw(% x).IsNil() = %v, want %v", []byte(tc.r), got, tc.want)
		}
	}
}

// Integers go on the wire in their most compact form.
func TestEncodeCompactIntegers(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string // a fragment the encoding must contain
	}{
		{"msg seq 5 is a positive fixint", &Msg{T: TypeMsg, R: "a", S: 5, D: Nil, TS: 1}, "a1 73 05"},
		{"msg ts in ms fits uint64 only", &Msg{T: TypeMsg, R: "a", S: 1, D: Nil, TS: 1700000000000}, "a2 74 73 cf 00 00 01 8b cf e5 68 00"},
		{"seq 200 is uint8", &OK{T: TypeOK, ID: 1, S: 200}, "a1 73 cc c8"},
		{"id 300 is uint16", &OK{T: TypeOK, ID: 300}, "a2 69 64 cd 01 2c"},
		{"seq 70000 is uint32", &OK{T: TypeOK, ID: 1, S: 70000}, "a1 73 ce 00 01 11 70"},
		{"code 4 is a fixint", &Bye{T: TypeBye, Code: CodeTokenExpired, Msg: "x"}, "a4 63 6f 64 65 04"},
		{"code 503 is uint16", &Bye{T: TypeBye, Code: CodeKicked, Msg: "x"}, "a4 63 6f 64 65 cd 01 f7"},
		{"welcome v and ping", &Welcome{T: TypeWelcome, V: 1, C: "c", N: "n", Ping: 25}, "a1 76 01"},
		{"welcome ping", &Welcome{T: TypeWelcome, V: 1, C: "c", N: "n", Ping: 25}, "a4 70 69 6e 67 19"},
		{"joined id and seq", &Joined{T: TypeJoined, ID: 7, R: "a", E: "e", S: 9}, "a2 69 64 07"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := MustEncode(tc.v)
			if !bytes.Contains(b, hx(t, tc.want)) {
				t.Fatalf("% x does not contain %s", b, tc.want)
			}
		})
	}
}

// Keys the contract lists as always present are on the wire even when zero;
// optional keys are absent when empty.
func TestEncodeKeyPresence(t *testing.T) {
	tests := []struct {
		name   string
		v      any
		always []string
		absent []string
	}{
		{"welcome", &Welcome{T: TypeWelcome}, []string{"t", "v", "c", "n", "ping"}, []string{"u", "exp"}},
		{"joined resumed", &Joined{T: TypeJoined}, []string{"t", "id", "r", "e", "s", "log", "reset", "pres"}, []string{"st"}},
		{"joined reset", &Joined{T: TypeJoined, Reset: true}, []string{"t", "id", "r", "e", "s", "log", "reset", "pres", "st"}, nil},
		{"msg", &Msg{T: TypeMsg}, []string{"t", "r", "s", "d", "ts"}, []string{"u", "c"}},
		{"state deleted", &State{T: TypeState}, []string{"t", "r", "s", "k", "ts"}, []string{"d", "u"}},
		{"eph", &Eph{T: TypeEph}, []string{"t", "r", "d"}, []string{"u", "c"}},
		{"pres", &Pres{T: TypePres}, []string{"t", "r"}, []string{"join", "leave", "upd"}},
		{"ok", &OK{T: TypeOK}, []string{"t", "id"}, []string{"s"}},
		{"err", &Err{T: TypeErr}, []string{"t", "code", "msg"}, []string{"id", "r"}},
		{"left", &Left{T: TypeLeft}, []string{"t", "r", "code", "msg"}, nil},
		{"bye", &Bye{T: TypeBye}, []string{"t", "code", "msg"}, nil},
		{"ping", &Ping{T: TypePing}, []string{"t"}, nil},
		{"member", &Member{}, []string{"c"}, []string{"u", "d", "i"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]msgpack.RawMessage
			unraw(t, MustEncode(tc.v), &m)
			for _, k := range tc.always {
				if _, ok := m[k]; !ok {
					t.Errorf("key %q missing", k)
				}
			}
			for _, k := range tc.absent {
				if _, ok := m[k]; ok {
					t.Errorf("key %q present", k)
				}
			}
			if len(m) != len(tc.always) {
				t.Errorf("got keys %v, want exactly %v", keys(m), tc.always)
			}
		})
	}
}

func keys(m map[string]msgpack.RawMessage) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestEncodeJoinedShapes(t *testing.T) {
	tests := []struct {
		name string
		j    Joined
		log  string // encoding of log
		pres string // encoding of pres
		st   string // encoding of st, "" for absent
	}{
		{"nil slices are empty arrays", Joined{T: TypeJoined}, "90", "90", ""},
		{"reset with no state has an empty st", Joined{T: TypeJoined, Reset: true}, "90", "90", "80"},
		{"st only with reset", Joined{T: TypeJoined, St: map[string]Raw{"k": Nil}}, "90", "90", ""},
		{"reset with state", Joined{T: TypeJoined, Reset: true, St: map[string]Raw{"k": nil}}, "90", "90", "81 a1 6b c0"},
		{"log and pres", Joined{T: TypeJoined, Log: []Raw{{0x01}, nil}, Pres: []Member{{C: "c"}}},
			"92 01 c0", "91 81 a1 63 a1 63", ""},
		{"empty T is joined", Joined{}, "90", "90", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// By value and by pointer alike.
			for _, v := range []any{tc.j, &tc.j} {
				var m map[string]msgpack.RawMessage
				unraw(t, MustEncode(v), &m)
				if got := []byte(m["log"]); !bytes.Equal(got, hx(t, tc.log)) {
					t.Errorf("log = % x, want %s", got, tc.log)
				}
				if got := []byte(m["pres"]); !bytes.Equal(got, hx(t, tc.pres)) {
					t.Errorf("pres = % x, want %s", got, tc.pres)
				}
				st, ok := m["st"]
				if tc.st == "" && ok {
					t.Errorf("st present: % x", []byte(st))
				}
				if tc.st != "" && !bytes.Equal(st, hx(t, tc.st)) {
					t.Errorf("st = % x, want %s", []byte(st), tc.st)
				}
				var typ string
				unraw(t, Raw(m["t"]), &typ)
				if typ != TypeJoined {
					t.Errorf("t = %q", typ)
				}
			}
		})
	}
	// A nil *Joined is msgpack nil, like any nil pointer.
	if b := MustEncode((*Joined)(nil)); !bytes.Equal(b, Nil) {
		t.Fatalf("Encode((*Joined)(nil)) = % x", b)
	}
}

// Encode returns a fresh slice each time: results may be shared and kept.
func TestEncodeFreshSlices(t *testing.T) {
	a := MustEncode(&OK{T: TypeOK, ID: 1})
	b := MustEncode(&OK{T: TypeOK, ID: 2})
	if bytes.Equal(a, b) {
		t.Fatalf("encodings equal: % x", a)
	}
	var f Frame
	if err := DecodeFrame(a, &f); err != nil || f.ID != 1 {
		t.Fatalf("first result overwritten: %+v, %v", f, err)
	}
	// A large encoding does not leave a large buffer behind, and a small
	// one after it is still right.
	big := MustEncode(&Msg{T: TypeMsg, R: "a", D: mp(t, string(make([]byte, 1<<20)))})
	if len(big) < 1<<20 {
		t.Fatalf("big encoding is %d bytes", len(big))
	}
	if c := MustEncode(&OK{T: TypeOK, ID: 1}); !bytes.Equal(c, a) {
		t.Fatalf("got % x after a large encoding, want % x", c, a)
	}
}

func TestEncodeErrors(t *testing.T) {
	if _, err := Encode(make(chan int)); err == nil {
		t.Fatal("Encode(chan) succeeded")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("MustEncode(chan) did not panic")
		}
	}()
	MustEncode(make(chan int))
}

func TestEncodeConcurrent(t *testing.T) {
	t.Parallel()
	done := make(chan struct{})
	for g := 0; g < 8; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := uint64(0); i < 2000; i++ {
				b, err := Encode(&OK{T: TypeOK, ID: i, S: i})
				if err != nil {
					t.Error(err)
					return
				}
				var f Frame
				if err := DecodeFrame(b, &f); err != nil || f.ID != i || f.S != i {
					t.Errorf("round trip of %d: %+v, %v", i, f, err)
					return
				}
			}
		}()
	}
	for g := 0; g < 8; g++ {
		<-done
	}
}

// Member's hand-written encoding is byte for byte what its struct tags give,
// and decodes back to the same member.
func TestMemberEncoding(t *testing.T) {
	type tagged struct { // Member's fields and tags, without its encoder
		C string `msgpack:"c"`
		U string `msgpack:"u,omitempty"`
		D Raw    `msgpack:"d,omitempty"`
		I Raw    `msgpack:"i,omitempty"`
	}
	data := MustEncode(map[string]any{"name": "Ann"})
	for _, m := range []Member{
		{C: "c1"},
		{C: "c1", U: "ann"},
		{C: "c1", D: data},
		{C: "c1", I: data},
		{C: "c1", U: "ann", D: data, I: data},
		{C: strings.Repeat("x", 40), U: strings.Repeat("u", 300), D: Raw{0x01}, I: data},
	} {
		got, want := MustEncode(m), MustEncode(tagged(m))
		if !bytes.Equal(got, want) {
			t.Errorf("%+v: % x, want % x", m, got, want)
		}
		var back Member
		if err := msgpack.Unmarshal(got, &back); err != nil || back.C != m.C || back.U != m.U || !bytes.Equal(back.D, m.D) || !bytes.Equal(back.I, m.I) {
			t.Errorf("%+v decoded as %+v (%v)", m, back, err)
		}
	}
}
