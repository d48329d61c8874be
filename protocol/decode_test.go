package protocol

import (
	"bytes"
	"math"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func TestDecodeClientFrames(t *testing.T) {
	pdata := mp(t, map[string]any{"name": "ann"})
	tests := []struct {
		name string
		in   any
		want Frame
	}{
		{"hello", map[string]any{"t": "hello", "v": 1, "tok": "tk", "cli": "roomd-js/1.0"},
			Frame{T: TypeHello, V: 1, Tok: "tk", Cli: "roomd-js/1.0"}},
		{"hello reusing a connection id", map[string]any{"t": "hello", "v": 1, "c": "c-prev"},
			Frame{T: TypeHello, V: 1, C: "c-prev"}},
		{"join plain", map[string]any{"t": "join", "id": 1, "r": "chat:lobby"},
			Frame{T: TypeJoin, ID: 1, R: "chat:lobby"}},
		{"join with since, p and h", map[string]any{"t": "join", "id": 2, "r": "chat:lobby",
			"since": map[string]any{"e": "ep1", "s": 41}, "p": map[string]any{"name": "ann"}, "h": 50},
			Frame{T: TypeJoin, ID: 2, R: "chat:lobby", Since: &Since{E: "ep1", S: 41}, P: pdata, H: 50}},
		{"join since with extra key", map[string]any{"t": "join", "id": 2, "r": "a",
			"since": map[string]any{"e": "ep1", "s": uint64(math.MaxUint64), "x": []int{1}}},
			Frame{T: TypeJoin, ID: 2, R: "a", Since: &Since{E: "ep1", S: math.MaxUint64}}},
		{"join with negative h (the server counts it as 0)", map[string]any{"t": "join", "id": 1, "r": "a", "h": -1},
			Frame{T: TypeJoin, ID: 1, R: "a", H: -1}},
		{"leave with id", map[string]any{"t": "leave", "id": 3, "r": "a"},
			Frame{T: TypeLeave, ID: 3, R: "a"}},
		{"leave without id", map[string]any{"t": "leave", "r": "a"},
			Frame{T: TypeLeave, R: "a"}},
		{"pub", map[string]any{"t": "pub", "id": 4, "r": "a", "d": "hi"},
			Frame{T: TypePub, ID: 4, R: "a", D: mp(t, "hi")}},
		{"pub eph", map[string]any{"t": "pub", "r": "a", "d": []int{1, 2}, "eph": true},
			Frame{T: TypePub, R: "a", D: mp(t, []int{1, 2}), Eph: true}},
		{"pub with key", map[string]any{"t": "pub", "id": 5, "r": "a", "d": 7, "key": "k-1", "eph": false},
			Frame{T: TypePub, ID: 5, R: "a", D: mp(t, 7), Key: "k-1"}},
		{"pres", map[string]any{"t": "pres", "id": 6, "r": "a", "d": map[string]any{"name": "ann"}},
			Frame{T: TypePres, ID: 6, R: "a", D: pdata}},
		{"set with d", map[string]any{"t": "set", "id": 7, "r": "a", "k": "shape:1", "d": 1.5},
			Frame{T: TypeSet, ID: 7, R: "a", K: "shape:1", D: mp(t, 1.5)}},
		{"set without d", map[string]any{"t": "set", "id": 8, "r": "a", "k": "shape:1"},
			Frame{T: TypeSet, ID: 8, R: "a", K: "shape:1"}},
		{"set with nil d", map[string]any{"t": "set", "r": "a", "k": "shape:1", "d": nil},
			Frame{T: TypeSet, R: "a", K: "shape:1", D: Nil}},
		{"auth", map[string]any{"t": "auth", "id": 9, "tok": "fresh"},
			Frame{T: TypeAuth, ID: 9, Tok: "fresh"}},
		{"largest id", map[string]any{"t": "leave", "id": uint64(math.MaxUint64), "r": "a"},
			Frame{T: TypeLeave, ID: math.MaxUint64, R: "a"}},
		{"id as a signed int", map[string]any{"t": "leave", "id": int64(300), "r": "a"},
			Frame{T: TypeLeave, ID: 300, R: "a"}},
		{"unknown type decodes (the server answers unknown_type)", map[string]any{"t": "frob", "r": "a"},
			Frame{T: "frob", R: "a"}},
		{"unknown keys ignored", map[string]any{"t": "pub", "r": "a", "d": 1,
			"zz": map[string]any{"deep": []any{1, "x", map[string]any{"y": nil}}}, "x-ext": "v"},
			Frame{T: TypePub, R: "a", D: mp(t, 1)}},
		{"nil values accepted", map[string]any{"t": "join", "id": nil, "r": nil, "since": nil, "h": nil,
			"eph": nil, "key": nil, "v": nil, "code": nil, "s": nil},
			Frame{T: TypeJoin}},
		{"nil raw values kept as msgpack nil", map[string]any{"t": "join", "r": "a", "p": nil, "d": nil},
			Frame{T: TypeJoin, R: "a", P: Nil, D: Nil}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var f Frame
			if err := DecodeFrame(mp(t, tc.in), &f); err != nil {
				t.Fatalf("DecodeFrame: %v", err)
			}
			if !reflect.DeepEqual(f, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", f, tc.want)
			}
		})
	}
}

func TestDecodeFrameResets(t *testing.T) {
	f := Frame{T: "x", ID: 9, Since: &Since{E: "e"}, D: Raw{1}, Code: 5}
	if err := DecodeFrame(mp(t, map[string]any{"t": "leave", "r": "a"}), &f); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f, Frame{T: TypeLeave, R: "a"}) {
		t.Fatalf("frame not reset: %+v", f)
	}
}

// Raw fields are copies: the message buffer may be reused after decoding.
func TestDecodeFrameCopiesRaw(t *testing.T) {
	b := mp(t, map[string]any{"t": "pub", "r": "a", "d": "hello"})
	var f Frame
	if err := DecodeFrame(b, &f); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	var s string
	unraw(t, f.D, &s)
	if s != "hello" || f.T != "pub" || f.R != "a" {
		t.Fatalf("decoded frame changed with its buffer: %+v", f)
	}
}

func TestDecodeServerFrames(t *testing.T) {
	msg := &Msg{T: TypeMsg, R: "chat:lobby", S: 5, U: "ann", C: "c1", D: mp(t, "hi"), TS: 1700000000000}
	st := &State{T: TypeState, R: "board:42", S: 6, K: "shape:1", D: mp(t, map[string]any{"x": 1}), U: "bob", TS: 1700000000001}
	del := &State{T: TypeState, R: "board:42", S: 7, K: "shape:1", TS: 1700000000002}
	members := []Member{
		{C: "c1", U: "ann", D: mp(t, map[string]any{"name": "ann"}), I: mp(t, map[string]any{"role": "admin"})},
		{C: "c2"},
	}
	tests := []struct {
		name  string
		in    any
		want  Frame
		check func(t *testing.T, f *Frame)
	}{
		{name: "welcome", in: &Welcome{T: TypeWelcome, V: 1, C: "c1", U: "ann", N: "node-a", Ping: 25, Exp: 1700003600},
			want: Frame{T: TypeWelcome, V: 1, C: "c1", U: "ann", N: "node-a", Ping: 25, Exp: 1700003600}},
		{name: "welcome anonymous", in: &Welcome{T: TypeWelcome, V: 1, C: "c1", N: "node-a", Ping: 25},
			want: Frame{T: TypeWelcome, V: 1, C: "c1", N: "node-a", Ping: 25}},
		{name: "msg", in: msg,
			want: Frame{T: TypeMsg, R: "chat:lobby", S: 5, U: "ann", C: "c1", D: mp(t, "hi"), TS: 1700000000000}},
		{name: "msg from the API", in: &Msg{T: TypeMsg, R: "a", S: 1, D: mp(t, 1), TS: 1},
			want: Frame{T: TypeMsg, R: "a", S: 1, D: mp(t, 1), TS: 1}},
		{name: "state", in: st,
			want: Frame{T: TypeState, R: "board:42", S: 6, K: "shape:1", D: st.D, U: "bob", TS: 1700000000001}},
		{name: "state deleted has no d", in: del,
			want: Frame{T: TypeState, R: "board:42", S: 7, K: "shape:1", TS: 1700000000002}},
		{name: "eph", in: &Eph{T: TypeEph, R: "a", U: "ann", C: "c1", D: mp(t, []int{3, 4})},
			want: Frame{T: TypeEph, R: "a", U: "ann", C: "c1", D: mp(t, []int{3, 4})}},
		{name: "eph nil payload is msgpack nil", in: &Eph{T: TypeEph, R: "a"},
			want: Frame{T: TypeEph, R: "a", D: Nil}},
		{name: "ok", in: &OK{T: TypeOK, ID: 3}, want: Frame{T: TypeOK, ID: 3}},
		{name: "ok with seq", in: &OK{T: TypeOK, ID: 4, S: 99}, want: Frame{T: TypeOK, ID: 4, S: 99}},
		{name: "err", in: &Err{T: TypeErr, ID: 5, R: "a", Code: CodeNotJoined, Msg: "not joined"},
			want: Frame{T: TypeErr, ID: 5, R: "a", Code: CodeNotJoined, Msg: "not joined"}},
		{name: "err without request", in: &Err{T: TypeErr, Code: CodeRateLimited, Msg: "slow down"},
			want: Frame{T: TypeErr, Code: CodeRateLimited, Msg: "slow down"}},
		{name: "left", in: &Left{T: TypeLeft, R: "a", Code: CodeKicked, Msg: "kicked"},
			want: Frame{T: TypeLeft, R: "a", Code: CodeKicked, Msg: "kicked"}},
		{name: "bye", in: &Bye{T: TypeBye, Code: CodeTooManyConns, Msg: "limit"},
			want: Frame{T: TypeBye, Code: CodeTooManyConns, Msg: "limit"}},
		{name: "ping", in: &Ping{T: TypePing}, want: Frame{T: TypePing}},
		{name: "pres", in: &Pres{T: TypePres, R: "a", Join: members, Leave: []string{"c3", "c4"}, Upd: members[1:]},
			check: func(t *testing.T, f *Frame) {
				if f.T != TypePres || f.R != "a" {
					t.Fatalf("got %+v", f)
				}
				var join, upd []Member
				var leave []string
				unraw(t, f.Join, &join)
				unraw(t, f.Leave, &leave)
				unraw(t, f.Upd, &upd)
				if !reflect.DeepEqual(join, members) || !reflect.DeepEqual(upd, members[1:]) ||
					!reflect.DeepEqual(leave, []string{"c3", "c4"}) {
					t.Fatalf("join %+v leave %v upd %+v", join, leave, upd)
				}
			}},
		{name: "pres leave only", in: &Pres{T: TypePres, R: "a", Leave: []string{"c3"}},
			check: func(t *testing.T, f *Frame) {
				if f.Join != nil || f.Upd != nil || f.Leave == nil {
					t.Fatalf("absent deltas must stay absent: %+v", f)
				}
			}},
		{name: "joined reset", in: &Joined{T: TypeJoined, ID: 1, R: "a", E: "ep1", S: 7,
			Log: []Raw{MustEncode(msg), MustEncode(st), MustEncode(del)}, Reset: true, Pres: members,
			St: map[string]Raw{"shape:2": mp(t, "v"), "n": Nil}},
			check: func(t *testing.T, f *Frame) {
				if f.T != TypeJoined || f.ID != 1 || f.R != "a" || f.E != "ep1" || f.S != 7 || !f.Reset {
					t.Fatalf("got %+v", f)
				}
				var log []Raw
				unraw(t, f.Log, &log)
				if len(log) != 3 {
					t.Fatalf("log has %d events", len(log))
				}
				var ev Frame
				if err := DecodeFrame(log[0], &ev); err != nil || ev.T != TypeMsg || ev.S != 5 {
					t.Fatalf("log[0] = %+v, %v", ev, err)
				}
				if err := DecodeFrame(log[2], &ev); err != nil || ev.T != TypeState || ev.S != 7 || ev.D != nil {
					t.Fatalf("log[2] = %+v, %v", ev, err)
				}
				var pres []Member
				unraw(t, f.Pres, &pres)
				if !reflect.DeepEqual(pres, members) {
					t.Fatalf("pres = %+v", pres)
				}
				var state map[string]Raw
				unraw(t, f.St, &state)
				if len(state) != 2 || !bytes.Equal(state["shape:2"], mp(t, "v")) || !state["n"].IsNil() {
					t.Fatalf("st = %v", state)
				}
			}},
		{name: "joined resumed", in: &Joined{T: TypeJoined, ID: 2, R: "a", E: "ep1", S: 7, Log: []Raw{MustEncode(del)}},
			check: func(t *testing.T, f *Frame) {
				if f.Reset || f.St != nil || f.ID != 2 || f.S != 7 {
					t.Fatalf("got %+v", f)
				}
				var pres []Member
				unraw(t, f.Pres, &pres)
				if !bytes.Equal(f.Pres, []byte{0x90}) {
					t.Fatalf("pres = % x, want an empty array", []byte(f.Pres))
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Encode(tc.in)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			var f Frame
			if err := DecodeFrame(b, &f); err != nil {
				t.Fatalf("DecodeFrame(% x): %v", b, err)
			}
			if tc.check != nil {
				tc.check(t, &f)
				return
			}
			if !reflect.DeepEqual(f, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", f, tc.want)
			}
		})
	}
}

func TestDecodeFrameBad(t *testing.T) {
	good := mp(t, map[string]any{"t": "pub", "r": "a", "d": "x"})
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"array", mp(t, []any{"pub", "a"})},
		{"string", mp(t, "pub")},
		{"int", mp(t, 1)},
		{"nil", hx(t, "c0")},
		{"truncated map", good[:len(good)-1]},
		{"map of more pairs than bytes", hx(t, "de ff ff a1 74")},
		{"trailing bytes", cat(good, hx(t, "c0"))},
		{"two frames", cat(good, good)},
		{"int key", mp(t, map[any]any{1: "x", "t": "pub"})},
		{"nil key", hx(t, "82 a1 74 a3 70 75 62 c0 01")},
		{"bin key", hx(t, "81 c4 01 74 a3 70 75 62")},
		{"array key", hx(t, "81 91 01 a3 70 75 62")},
		{"missing t", mp(t, map[string]any{"id": 1, "r": "a"})},
		{"t nil", mp(t, map[string]any{"t": nil, "r": "a"})},
		{"t empty", mp(t, map[string]any{"t": "", "r": "a"})},
		{"t as int", mp(t, map[string]any{"t": 1})},
		{"t as bin", mp(t, map[string]any{"t": []byte("pub")})},
		{"id as string", mp(t, map[string]any{"t": "join", "id": "1", "r": "a"})},
		{"id negative", mp(t, map[string]any{"t": "join", "id": -1, "r": "a"})},
		{"id negative int64", mp(t, map[string]any{"t": "join", "id": int64(math.MinInt64), "r": "a"})},
		{"id as float", mp(t, map[string]any{"t": "join", "id": 1.0, "r": "a"})},
		{"id as bool", mp(t, map[string]any{"t": "join", "id": true, "r": "a"})},
		{"r as int", mp(t, map[string]any{"t": "join", "id": 1, "r": 5})},
		{"since as array", mp(t, map[string]any{"t": "join", "id": 1, "r": "a", "since": []any{"e", 1}})},
		{"since as string", mp(t, map[string]any{"t": "join", "id": 1, "r": "a", "since": "ep1:5"})},
		{"since.s negative", mp(t, map[string]any{"t": "join", "id": 1, "r": "a", "since": map[string]any{"e": "x", "s": -5}})},
		{"since.s as string", mp(t, map[string]any{"t": "join", "id": 1, "r": "a", "since": map[string]any{"e": "x", "s": "5"}})},
		{"since.e as int", mp(t, map[string]any{"t": "join", "id": 1, "r": "a", "since": map[string]any{"e": 1, "s": 5}})},
		{"since with int key", mp(t, map[string]any{"t": "join", "id": 1, "r": "a", "since": map[any]any{1: 2}})},
		{"h as string", mp(t, map[string]any{"t": "join", "id": 1, "r": "a", "h": "10"})},
		{"h beyond int64", mp(t, map[string]any{"t": "join", "id": 1, "r": "a", "h": uint64(math.MaxUint64)})},
		{"eph as string", mp(t, map[string]any{"t": "pub", "r": "a", "d": 1, "eph": "true"})},
		{"eph as int", mp(t, map[string]any{"t": "pub", "r": "a", "d": 1, "eph": 1})},
		{"key as int", mp(t, map[string]any{"t": "pub", "r": "a", "d": 1, "key": 5})},
		{"k as bin", mp(t, map[string]any{"t": "set", "r": "a", "k": []byte("k")})},
		{"v as string", mp(t, map[string]any{"t": "hello", "v": "1"})},
		{"tok as map", mp(t, map[string]any{"t": "hello", "v": 1, "tok": map[string]any{}})},
		{"code out of range", mp(t, map[string]any{"t": "err", "code": 70000, "msg": "x"})},
		{"reset as int", mp(t, map[string]any{"t": "joined", "reset": 0})},
		{"ts as float", mp(t, map[string]any{"t": "msg", "ts": 1.5})},
		{"d truncated", hx(t, "82 a1 74 a3 70 75 62 a1 64 92 01")},
		{"unknown key truncated", hx(t, "82 a1 74 a3 70 75 62 a2 7a 7a dc 00 05 01")},
		{"unknown key with c1", hx(t, "82 a1 74 a3 70 75 62 a2 7a 7a c1")},
		{"key str32 past the end", hx(t, "81 db 00 00 00 09 74")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var f Frame
			wantCode(t, DecodeFrame(tc.in, &f), CodeBadRequest)
		})
	}
}

// Frames that carry ext values in their payload still decode: payload
// checks are ValidatePayload's job, done by whoever accepts the payload.
func TestDecodeFrameLeavesPayloadChecks(t *testing.T) {
	b := cat(hx(t, "83 a1 74 a3 70 75 62 a1 72 a1 61 a1 64"), hx(t, "d6 ff 00 00 00 01"))
	var f Frame
	if err := DecodeFrame(b, &f); err != nil {
		t.Fatal(err)
	}
	wantCode(t, ValidatePayload(f.D), CodeBadRequest)
}

// Each integer width the msgpack spec allows decodes the same.
func TestDecodeFrameIntegerWidths(t *testing.T) {
	for _, enc := range []string{"05", "cc 05", "cd 00 05", "ce 00 00 00 05", "cf 00 00 00 00 00 00 00 05",
		"d0 05", "d1 00 05", "d2 00 00 00 05", "d3 00 00 00 00 00 00 00 05"} {
		// {t: "leave", id: 5, h: 5, r: "a"}
		b := cat(hx(t, "84 a1 74 a5 6c 65 61 76 65 a2 69 64"), hx(t, enc), hx(t, "a1 68"), hx(t, enc), hx(t, "a1 72 a1 61"))
		var f Frame
		if err := DecodeFrame(b, &f); err != nil || f.ID != 5 || f.H != 5 {
			t.Errorf("%s: %+v, %v", enc, f, err)
		}
	}
	// Negative numbers in signed encodings are fine where an int is wanted.
	for _, enc := range []string{"ff", "d0 ff", "d1 ff ff", "d2 ff ff ff ff", "d3 ff ff ff ff ff ff ff ff"} {
		b := cat(hx(t, "82 a1 74 a3 6d 73 67 a2 74 73"), hx(t, enc))
		var f Frame
		if err := DecodeFrame(b, &f); err != nil || f.TS != -1 {
			t.Errorf("%s: %+v, %v", enc, f, err)
		}
	}
}

// The decoder agrees with the msgpack library on what a frame holds.
func TestDecodeFrameMatchesLibrary(t *testing.T) {
	for _, b := range append(clientFrames(t), serverFrames(t)...) {
		var f Frame
		if err := DecodeFrame(b, &f); err != nil {
			t.Fatalf("DecodeFrame(% x): %v", b, err)
		}
		var m map[string]msgpack.RawMessage
		unraw(t, b, &m)
		for k, v := range m {
			var got Raw
			switch k {
			case "d":
				got = f.D
			case "p":
				got = f.P
			case "log":
				got = f.Log
			case "pres":
				got = f.Pres
			case "st":
				got = f.St
			case "join":
				got = f.Join
			case "leave":
				got = f.Leave
			case "upd":
				got = f.Upd
			default:
				continue
			}
			if !bytes.Equal(got, v) {
				t.Errorf("%s: key %q = % x, library says % x", f.T, k, []byte(got), []byte(v))
			}
		}
	}
}
