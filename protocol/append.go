package protocol

// Hand-written encoders of the frames a node sends at the highest rates,
// byte for byte what Encode gives (tests compare them): Encode goes through
// reflection, and a node refusing tens of thousands of publishes a second
// under a flood answers each with an err.

// AppendErr appends e, msgpack-encoded as Encode encodes it, to dst.
func AppendErr(dst []byte, e Err) []byte {
	n := 3 // t, code, msg
	if e.ID != 0 {
		n++
	}
	if e.R != "" {
		n++
	}
	dst = append(dst, 0x80|byte(n))
	dst = AppendStr(AppendStr(dst, "t"), e.T)
	if e.ID != 0 {
		dst = AppendUint(AppendStr(dst, "id"), e.ID)
	}
	if e.R != "" {
		dst = AppendStr(AppendStr(dst, "r"), e.R)
	}
	dst = AppendUint(AppendStr(dst, "code"), uint64(e.Code))
	return AppendStr(AppendStr(dst, "msg"), e.Msg)
}

// AppendStr appends s as a msgpack str in its shortest form, as Encode
// writes strings.
func AppendStr(dst []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		dst = append(dst, 0xa0|byte(n))
	case n <= 0xff:
		dst = append(dst, 0xd9, byte(n))
	case n <= 0xffff:
		dst = append(dst, 0xda, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, s...)
}

// AppendUint appends u as a msgpack unsigned integer in its most compact
// form, as Encode's compact ints do.
func AppendUint(dst []byte, u uint64) []byte {
	switch {
	case u <= 0x7f:
		return append(dst, byte(u))
	case u <= 0xff:
		return append(dst, 0xcc, byte(u))
	case u <= 0xffff:
		return append(dst, 0xcd, byte(u>>8), byte(u))
	case u <= 0xffffffff:
		return append(dst, 0xce, byte(u>>24), byte(u>>16), byte(u>>8), byte(u))
	}
	return append(dst, 0xcf, byte(u>>56), byte(u>>48), byte(u>>40), byte(u>>32), byte(u>>24), byte(u>>16), byte(u>>8), byte(u))
}
