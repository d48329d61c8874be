package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"
)

// jsonToMsgpack re-encodes the "info" claim as msgpack: objects become maps
// with sorted string keys, integers the smallest msgpack integer that holds
// them, other numbers float64. An absent or null claim gives nil.
func jsonToMsgpack(raw json.RawMessage) (msgpack.RawMessage, error) {
	if len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: claim \"info\" is not valid JSON", ErrMalformed)
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	enc.UseCompactInts(true)
	if err := enc.Encode(numbers(v)); err != nil {
		return nil, fmt.Errorf("%w: claim \"info\" cannot be encoded", ErrMalformed)
	}
	return msgpack.RawMessage(buf.Bytes()), nil
}

// numbers replaces the json.Numbers of a decoded JSON value with int64,
// uint64 or float64, in place.
func numbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			return u
		}
		f, _ := v.Float64() // JSON numbers always parse; huge ones become ±Inf
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = numbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = numbers(e)
		}
	}
	return v
}
