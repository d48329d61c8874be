package protocol

import (
	"bytes"
	"math"
	"testing"
)

// nest wraps inner in n single-element arrays.
func nest(n int, inner []byte) []byte {
	return append(bytes.Repeat([]byte{0x91}, n), inner...)
}

// nestMaps wraps inner in n single-pair maps {"k": ...}.
func nestMaps(n int, inner []byte) []byte {
	return append(bytes.Repeat([]byte{0x81, 0xa1, 'k'}, n), inner...)
}

func TestValidatePayload(t *testing.T) {
	ok := []struct {
		name string
		p    []byte
	}{
		{"absent", nil},
		{"nil", Nil},
		{"int", mp(t, 42)},
		{"negative int", mp(t, -42)},
		{"uint64", mp(t, uint64(math.MaxUint64))},
		{"float32", mp(t, float32(1.5))},
		{"float64", mp(t, 2.5)},
		{"bool", mp(t, true)},
		{"string", mp(t, "héllo")},
		{"long string", mp(t, string(bytes.Repeat([]byte("x"), 70000)))},
		{"bin", mp(t, []byte{1, 2, 3})},
		{"empty map", mp(t, map[string]any{})},
		{"empty array", mp(t, []any{})},
		{"nested", mp(t, map[string]any{"a": []any{1, "x", nil, map[string]any{"b": []byte{1}}}, "c": 1.5})},
		{"int keys", mp(t, map[any]any{1: "one", 2: []any{true}})},
		{"map keys that are maps", hx(t, "81 81 a1 61 01 c0")},
		{"32 levels of arrays", nest(MaxNesting, hx(t, "01"))},
		{"32 levels, innermost empty", nest(MaxNesting-1, hx(t, "90"))},
		{"32 levels of maps", nestMaps(MaxNesting, hx(t, "c0"))},
		{"wide", mp(t, make([]int, 10000))},
	}
	for _, tc := range ok {
		t.Run("ok/"+tc.name, func(t *testing.T) {
			if err := ValidatePayload(tc.p); err != nil {
				t.Fatalf("ValidatePayload(% .40x): %v", tc.p, err)
			}
		})
	}

	bad := []struct {
		name string
		p    []byte
	}{
		{"fixext1", hx(t, "d4 01 00")},
		{"fixext16", cat(hx(t, "d8 05"), make([]byte, 16))},
		{"ext8", hx(t, "c7 03 05 01 02 03")},
		{"ext16", hx(t, "c8 00 01 05 01")},
		{"ext32", hx(t, "c9 00 00 00 01 05 01")},
		{"timestamp ext -1", hx(t, "d6 ff 65 5b 2a 00")},
		{"timestamp ext -1 in 96 bits", cat(hx(t, "c7 0c ff"), make([]byte, 12))},
		{"ext in a map value", hx(t, "82 a1 61 01 a1 62 d4 01 00")},
		{"ext as a map key", hx(t, "81 d4 01 00 01")},
		{"ext in an array", hx(t, "93 01 02 d6 ff 00 00 00 00")},
		{"ext deep inside", nest(10, nestMaps(5, hx(t, "d4 01 00")))},
		{"33 levels of arrays", nest(MaxNesting+1, hx(t, "01"))},
		{"33 levels, innermost empty", nest(MaxNesting, hx(t, "90"))},
		{"33 levels of maps", nestMaps(MaxNesting+1, hx(t, "c0"))},
		{"33 levels mixed", nest(20, nestMaps(12, hx(t, "90")))},
		{"far too deep", nest(100000, hx(t, "c0"))},
		{"trailing bytes", hx(t, "01 02")},
		{"trailing nil", cat(mp(t, map[string]any{"a": 1}), Nil)},
		{"truncated array", hx(t, "92 01")},
		{"truncated string", hx(t, "a5 61 62")},
		{"truncated map", hx(t, "81 a1 61")},
		{"array32 claims more than there is", hx(t, "dd 00 01 00 00 01 02")},
		{"c1", hx(t, "c1")},
		{"c1 nested", hx(t, "92 01 c1")},
	}
	for _, tc := range bad {
		t.Run("bad/"+tc.name, func(t *testing.T) {
			wantCode(t, ValidatePayload(tc.p), CodeBadRequest)
		})
	}
}

func TestValidatePayloadDoesNotAllocate(t *testing.T) {
	p := mp(t, map[string]any{"a": []any{1, "x", nil, map[string]any{"b": []byte{1}}}, "c": 1.5})
	allocs := testing.AllocsPerRun(100, func() {
		if err := ValidatePayload(p); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("ValidatePayload allocates %v times", allocs)
	}
}
