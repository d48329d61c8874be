package protocol

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// mp encodes v with the msgpack library, as a client in another language
// would: frames written as plain maps.
func mp(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatalf("msgpack.Marshal(%#v): %v", v, err)
	}
	return b
}

// hx decodes hex, ignoring spaces: hx("81 a1 74 a3 70 75 62").
func hx(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// cat concatenates byte slices into one message.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// wantCode fails unless err is a *Error with the given code.
func wantCode(t testing.TB, err error, code Code) {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("got error %v (%T), want a *Error with code %v", err, err, code)
	}
	if pe.Code != code {
		t.Fatalf("got code %v (%q), want %v", pe.Code, pe.Msg, code)
	}
}

// unraw decodes a Raw field with the msgpack library.
func unraw(t testing.TB, r Raw, v any) {
	t.Helper()
	if err := msgpack.Unmarshal(r, v); err != nil {
		t.Fatalf("msgpack.Unmarshal(% x): %v", []byte(r), err)
	}
}

// payload100 is a msgpack string of 98 bytes: a 100-byte payload.
var payload100 = func() Raw {
	b, err := msgpack.Marshal(strings.Repeat("x", 98))
	if err != nil || len(b) != 100 {
		panic("payload100")
	}
	return b
}()

// clientFrames are real client frames, as a client would encode them.
func clientFrames(t testing.TB) [][]byte {
	return [][]byte{
		mp(t, map[string]any{"t": "hello", "v": 1, "tok": "eyJhbGciOi.x.y", "cli": "roomd-js/1.0.0"}),
		mp(t, map[string]any{"t": "hello", "v": 1, "c": "c-prev"}),
		mp(t, map[string]any{"t": "join", "id": 1, "r": "chat:lobby", "p": map[string]any{"name": "ann"}, "h": 20}),
		mp(t, map[string]any{"t": "join", "id": 2, "r": "board:42", "since": map[string]any{"e": "ep1", "s": 17}}),
		mp(t, map[string]any{"t": "leave", "id": 3, "r": "chat:lobby"}),
		mp(t, map[string]any{"t": "leave", "r": "chat:lobby"}),
		mp(t, map[string]any{"t": "pub", "id": 4, "r": "chat:lobby", "d": map[string]any{"text": "hi"}, "key": "k-1"}),
		mp(t, map[string]any{"t": "pub", "r": "board:42", "d": []any{10, 20}, "eph": true}),
		mp(t, map[string]any{"t": "pres", "id": 5, "r": "chat:lobby", "d": map[string]any{"typing": true}}),
		mp(t, map[string]any{"t": "set", "id": 6, "r": "board:42", "k": "shape:1", "d": map[string]any{"x": 1.5}}),
		mp(t, map[string]any{"t": "set", "id": 7, "r": "board:42", "k": "shape:1"}),
		mp(t, map[string]any{"t": "auth", "id": 8, "tok": "eyJhbGciOi.x.z"}),
	}
}

// serverFrames are real server frames, encoded with Encode.
func serverFrames(t testing.TB) [][]byte {
	msg := MustEncode(&Msg{T: TypeMsg, R: "chat:lobby", S: 5, U: "ann", C: "c1", D: mp(t, "hi"), TS: 1700000000000})
	st := MustEncode(&State{T: TypeState, R: "board:42", S: 6, K: "shape:1", D: mp(t, 1), TS: 1700000000001})
	return [][]byte{
		MustEncode(&Welcome{T: TypeWelcome, V: 1, C: "c1", U: "ann", N: "node-a", Ping: 25, Exp: 1700003600}),
		MustEncode(&Joined{T: TypeJoined, ID: 1, R: "chat:lobby", E: "ep1", S: 6, Log: []Raw{msg, st}, Reset: true,
			Pres: []Member{{C: "c1", U: "ann", D: mp(t, map[string]any{"name": "ann"})}}, St: map[string]Raw{"shape:1": mp(t, 1)}}),
		msg,
		st,
		MustEncode(&State{T: TypeState, R: "board:42", S: 7, K: "shape:1", TS: 1700000000002}),
		MustEncode(&Eph{T: TypeEph, R: "board:42", U: "ann", C: "c1", D: mp(t, []int{10, 20})}),
		MustEncode(&Pres{T: TypePres, R: "chat:lobby", Join: []Member{{C: "c2", U: "bob"}}, Leave: []string{"c3"}}),
		MustEncode(&OK{T: TypeOK, ID: 4, S: 5}),
		MustEncode(&Err{T: TypeErr, ID: 9, R: "chat:lobby", Code: CodeNotJoined, Msg: "not joined"}),
		MustEncode(&Left{T: TypeLeft, R: "chat:lobby", Code: CodeKicked, Msg: "kicked"}),
		MustEncode(&Bye{T: TypeBye, Code: CodeShutdown, Msg: "draining"}),
		MustEncode(&Ping{T: TypePing}),
	}
}
