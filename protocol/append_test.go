package protocol

import (
	"bytes"
	"strings"
	"testing"
)

func TestAppendErrIsEncode(t *testing.T) {
	ids := []uint64{0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffffff, 0x100000000, 1<<64 - 1}
	strs := []string{"", "r", strings.Repeat("a", 31), strings.Repeat("b", 32), strings.Repeat("c", 255), strings.Repeat("d", 256), strings.Repeat("é", 40000)}
	codes := []Code{CodeOverloaded, CodeRateLimited, CodeNotJoined, CodeInternal, 0, 0xffff}
	for _, id := range ids {
		for _, r := range strs {
			for _, code := range codes {
				for _, msg := range strs {
					e := Err{T: TypeErr, ID: id, R: r, Code: code, Msg: msg}
					want := MustEncode(e)
					got := AppendErr([]byte{0x42}, e)
					if !bytes.Equal(got[1:], want) || got[0] != 0x42 {
						t.Fatalf("AppendErr(%d, %d B room, code %d, %d B msg) = % x…, want % x…", id, len(r), code, len(msg), prefix(got[1:]), prefix(want))
					}
				}
			}
		}
	}
}

func prefix(b []byte) []byte { return b[:min(len(b), 24)] }

func BenchmarkErrEncode(b *testing.B) {
	e := Err{T: TypeErr, ID: 12345, R: "chat:lobby", Code: CodeOverloaded, Msg: "the room is over its share of the node"}
	b.Run("Encode", func(b *testing.B) {
		for b.Loop() {
			_ = MustEncode(e)
		}
	})
	b.Run("AppendErr", func(b *testing.B) {
		for b.Loop() {
			_ = AppendErr(make([]byte, 0, 64), e)
		}
	})
}
