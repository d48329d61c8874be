package protocol

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkEncodeMsg encodes a msg event with a 100-byte payload: what a
// room does once per published message.
func BenchmarkEncodeMsg(b *testing.B) {
	m := &Msg{T: TypeMsg, R: "chat:lobby", S: 123456, U: "user-42", C: "c-8f3a2b", D: payload100, TS: 1700000000000}
	n := len(MustEncode(m))
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeFrame decodes a pub with a 100-byte payload.
func BenchmarkDecodeFrame(b *testing.B) {
	frame := mp(b, map[string]any{"t": "pub", "id": 1234, "r": "chat:lobby", "d": payload100, "key": "k-0001"})
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	var f Frame
	for b.Loop() {
		if err := DecodeFrame(frame, &f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSplit splits a message of 10 pub frames.
func BenchmarkSplit(b *testing.B) {
	frame := mp(b, map[string]any{"t": "pub", "id": 1234, "r": "chat:lobby", "d": payload100, "key": "k-0001"})
	msg := bytes.Repeat(frame, 10)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	dst := make([][]byte, 0, 16)
	for b.Loop() {
		var err error
		if dst, err = Split(dst[:0], msg, 256); err != nil || len(dst) != 10 {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidatePayload validates a typical structured payload (a chat
// message with a few nested fields, about 150 bytes).
func BenchmarkValidatePayload(b *testing.B) {
	p := Raw(mp(b, map[string]any{
		"text":  "hello everyone, the meeting starts in five minutes",
		"from":  map[string]any{"id": "user-42", "name": "Ann", "color": 0x336699},
		"tags":  []any{"ann", "mtg", 3, true, nil},
		"pos":   []any{12.5, -3.25},
		"reply": map[string]any{"seq": 1234, "quote": []byte("meeting")},
	}))
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidatePayload(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeJoined encodes a joined frame whose presence snapshot holds
// 45 members (the average joiner of a room of 90), as every join does.
func BenchmarkEncodeJoined(b *testing.B) {
	pres := make([]Member, 45)
	for i := range pres {
		pres[i] = Member{C: fmt.Sprintf("conn%08d", i), U: fmt.Sprintf("user-%d", i), D: MustEncode(map[string]any{"name": "someone"})}
	}
	j := Joined{T: TypeJoined, ID: 1, R: "chat:lobby", E: "epoch", S: 42, Log: []Raw{}, Pres: pres}
	b.ReportAllocs()
	for b.Loop() {
		MustEncode(j)
	}
}
