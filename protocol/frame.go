package protocol

import "github.com/vmihailenco/msgpack/v5"

// Version is the protocol version this package speaks.
const Version = 1

// Subprotocol is the WebSocket subprotocol name of protocol v1.
const Subprotocol = "roomd.v1"

// Frame types, client to server.
const (
	TypeHello = "hello"
	TypeJoin  = "join"
	TypeLeave = "leave"
	TypePub   = "pub"
	TypePres  = "pres" // also server to client
	TypeSet   = "set"
	TypeAuth  = "auth"
)

// Frame types, server to client.
const (
	TypeWelcome = "welcome"
	TypeJoined  = "joined"
	TypeMsg     = "msg"
	TypeState   = "state"
	TypeEph     = "eph"
	TypeOK      = "ok"
	TypeErr     = "err"
	TypeLeft    = "left"
	TypePing    = "ping"
	TypeBye     = "bye"
)

// Frame is the decoded form of any frame, in either direction. Absent keys
// keep their zero value. Payloads and nested structures stay raw msgpack, so a
// payload is forwarded byte for byte and only decoded by whoever needs it.
type Frame struct {
	T  string // type
	ID uint64 // request id
	R  string // room
	D  Raw    // payload; nil when absent, [0xc0] when nil
	// hello, welcome
	V    int64
	Tok  string
	Cli  string
	C    string // connection id
	U    string // user id
	N    string // node name
	Ping int64
	Exp  int64
	// join
	Since *Since
	P     Raw // presence data
	H     int64
	// pub, set
	Eph bool
	Key string
	K   string
	// joined, msg, state, ok
	E     string
	S     uint64
	TS    int64
	Log   Raw // array of msg/state frames
	Reset bool
	Pres  Raw // array of members
	St    Raw // map of state
	// pres deltas
	Join  Raw // array of members
	Leave Raw // array of connection ids
	Upd   Raw // array of members
	Cnt   uint64
	All   Raw // array of members
	// err, left, bye
	Code Code
	Msg  string
}

// Since is a resume point: the epoch and the last seq a client saw.
type Since struct {
	E string `msgpack:"e"`
	S uint64 `msgpack:"s"`
}

// Member is one presence entry.
type Member struct {
	C string `msgpack:"c"`
	U string `msgpack:"u,omitempty"`
	D Raw    `msgpack:"d,omitempty"`
	I Raw    `msgpack:"i,omitempty"`
}

// EncodeMsgpack implements msgpack.CustomEncoder: the same bytes as the
// struct tags give (keys c, u, d, i in that order, the empty ones left out),
// written without reflection, since every joined snapshot and pres frame
// holds many members.
func (m Member) EncodeMsgpack(enc *msgpack.Encoder) error {
	n := 1
	for _, set := range []bool{m.U != "", len(m.D) > 0, len(m.I) > 0} {
		if set {
			n++
		}
	}
	if err := enc.EncodeMapLen(n); err != nil {
		return err
	}
	if err := encodeKeyString(enc, "c", m.C); err != nil {
		return err
	}
	if m.U != "" {
		if err := encodeKeyString(enc, "u", m.U); err != nil {
			return err
		}
	}
	for _, kv := range [...]struct {
		k string
		v Raw
	}{{"d", m.D}, {"i", m.I}} {
		if len(kv.v) == 0 {
			continue
		}
		if err := enc.EncodeString(kv.k); err != nil {
			return err
		}
		if err := kv.v.EncodeMsgpack(enc); err != nil {
			return err
		}
	}
	return nil
}

// Raw is a msgpack value kept encoded. Unlike msgpack.RawMessage, an empty
// Raw encodes as msgpack nil, never as nothing.
type Raw []byte

// Nil is the encoding of the msgpack nil value.
var Nil = Raw{0xc0}

// IsNil reports whether r is absent or the msgpack nil value.
func (r Raw) IsNil() bool { return len(r) == 0 || (len(r) == 1 && r[0] == 0xc0) }

// EncodeMsgpack implements msgpack.CustomEncoder.
func (r Raw) EncodeMsgpack(enc *msgpack.Encoder) error {
	if len(r) == 0 {
		return enc.EncodeNil()
	}
	_, err := enc.Writer().Write(r)
	return err
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (r *Raw) DecodeMsgpack(dec *msgpack.Decoder) error {
	b, err := dec.DecodeRaw()
	if err != nil {
		return err
	}
	*r = Raw(b)
	return nil
}

// The frames the server sends. Each carries its type in T; use the
// constructors or set T to the matching Type constant. Keys without
// omitempty are always present on the wire.

// Welcome answers hello.
type Welcome struct {
	T    string `msgpack:"t"`
	V    int    `msgpack:"v"`
	C    string `msgpack:"c"`
	U    string `msgpack:"u,omitempty"`
	N    string `msgpack:"n"`
	Ping int    `msgpack:"ping"`
	Exp  int64  `msgpack:"exp,omitempty"`
}

// Joined answers join.
type Joined struct {
	T     string         `msgpack:"t"`
	ID    uint64         `msgpack:"id"`
	R     string         `msgpack:"r"`
	E     string         `msgpack:"e"`
	S     uint64         `msgpack:"s"`
	Log   []Raw          `msgpack:"log"`
	Reset bool           `msgpack:"reset"`
	Pres  []Member       `msgpack:"pres"`
	St    map[string]Raw `msgpack:"st,omitempty"`
	Cnt   uint64         `msgpack:"cnt,omitempty"` // large-room mode: the entry count (pres is a sample)
}

// EncodeMsgpack implements msgpack.CustomEncoder so that the wire form holds
// to the contract whatever the slices hold: log and pres are always arrays
// (empty, never nil), and st is present exactly when Reset is true (an empty
// map when the room has no state). An empty T encodes as "joined".
func (j Joined) EncodeMsgpack(enc *msgpack.Encoder) error {
	n := 8
	if j.Reset {
		n++
	}
	if j.Cnt > 0 {
		n++
	}
	t := j.T
	if t == "" {
		t = TypeJoined
	}
	if err := enc.EncodeMapLen(n); err != nil {
		return err
	}
	if err := encodeKeyString(enc, "t", t); err != nil {
		return err
	}
	if err := encodeKeyUint(enc, "id", j.ID); err != nil {
		return err
	}
	if err := encodeKeyString(enc, "r", j.R); err != nil {
		return err
	}
	if err := encodeKeyString(enc, "e", j.E); err != nil {
		return err
	}
	if err := encodeKeyUint(enc, "s", j.S); err != nil {
		return err
	}
	if err := enc.EncodeString("log"); err != nil {
		return err
	}
	if err := enc.EncodeArrayLen(len(j.Log)); err != nil {
		return err
	}
	for _, ev := range j.Log {
		if err := ev.EncodeMsgpack(enc); err != nil {
			return err
		}
	}
	if err := enc.EncodeString("reset"); err != nil {
		return err
	}
	if err := enc.EncodeBool(j.Reset); err != nil {
		return err
	}
	if err := enc.EncodeString("pres"); err != nil {
		return err
	}
	if err := enc.EncodeArrayLen(len(j.Pres)); err != nil {
		return err
	}
	for i := range j.Pres {
		if err := enc.Encode(&j.Pres[i]); err != nil {
			return err
		}
	}
	if j.Cnt > 0 {
		if err := encodeKeyUint(enc, "cnt", j.Cnt); err != nil {
			return err
		}
	}
	if !j.Reset {
		return nil
	}
	if err := enc.EncodeString("st"); err != nil {
		return err
	}
	if err := enc.EncodeMapLen(len(j.St)); err != nil {
		return err
	}
	for k, v := range j.St {
		if err := enc.EncodeString(k); err != nil {
			return err
		}
		if err := v.EncodeMsgpack(enc); err != nil {
			return err
		}
	}
	return nil
}

func encodeKeyString(enc *msgpack.Encoder, key, v string) error {
	if err := enc.EncodeString(key); err != nil {
		return err
	}
	return enc.EncodeString(v)
}

func encodeKeyUint(enc *msgpack.Encoder, key string, v uint64) error {
	if err := enc.EncodeString(key); err != nil {
		return err
	}
	return enc.EncodeUint(v)
}

// Msg is a durable message event.
type Msg struct {
	T  string `msgpack:"t"`
	R  string `msgpack:"r"`
	S  uint64 `msgpack:"s"`
	U  string `msgpack:"u,omitempty"`
	C  string `msgpack:"c,omitempty"`
	D  Raw    `msgpack:"d"`
	TS int64  `msgpack:"ts"`
}

// State is a durable state change event. An absent D means the key was deleted.
type State struct {
	T  string `msgpack:"t"`
	R  string `msgpack:"r"`
	S  uint64 `msgpack:"s"`
	K  string `msgpack:"k"`
	D  Raw    `msgpack:"d,omitempty"`
	U  string `msgpack:"u,omitempty"`
	TS int64  `msgpack:"ts"`
}

// Eph is an ephemeral message event.
type Eph struct {
	T string `msgpack:"t"`
	R string `msgpack:"r"`
	U string `msgpack:"u,omitempty"`
	C string `msgpack:"c,omitempty"`
	D Raw    `msgpack:"d"`
}

// Pres is a presence delta.
type Pres struct {
	T     string   `msgpack:"t"`
	R     string   `msgpack:"r"`
	Join  []Member `msgpack:"join,omitempty"`
	Leave []string `msgpack:"leave,omitempty"`
	Upd   []Member `msgpack:"upd,omitempty"`
	Cnt   int      `msgpack:"cnt,omitempty"` // large-room mode: the entry count
	All   []Member `msgpack:"all,omitempty"` // leaving large-room mode: every entry
}

// OK acknowledges a request; S is set for pub and set.
type OK struct {
	T  string `msgpack:"t"`
	ID uint64 `msgpack:"id"`
	S  uint64 `msgpack:"s,omitempty"`
}

// Err reports a failed request.
type Err struct {
	T    string `msgpack:"t"`
	ID   uint64 `msgpack:"id,omitempty"`
	R    string `msgpack:"r,omitempty"`
	Code Code   `msgpack:"code"`
	Msg  string `msgpack:"msg"`
}

// Left tells a connection the server removed it from a room.
type Left struct {
	T    string `msgpack:"t"`
	R    string `msgpack:"r"`
	Code Code   `msgpack:"code"`
	Msg  string `msgpack:"msg"`
}

// Bye precedes a close by the server.
type Bye struct {
	T    string `msgpack:"t"`
	Code Code   `msgpack:"code"`
	Msg  string `msgpack:"msg"`
}

// Ping is the idle keepalive frame.
type Ping struct {
	T string `msgpack:"t"`
}
