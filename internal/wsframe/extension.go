package wsframe

import (
	"net/http"
	"slices"
	"strings"
)

// The negotiation of permessage-deflate (RFC 7692 §5, §7.1), as a server
// that compresses each message on its own with a 32 KiB window and
// inflates each of the client's messages on its own.

// DeflateResponse is the Sec-WebSocket-Extensions value a server answers an
// accepted offer with: neither side keeps a sliding window between
// messages, so a connection holds no compression state while it idles.
const DeflateResponse = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

// extParam is one extension parameter of an offer.
type extParam struct {
	name, value string
	hasValue    bool
}

// extOffer is one element of a Sec-WebSocket-Extensions list.
type extOffer struct {
	name   string
	params []extParam
}

// DeflateOffered reports whether the Sec-WebSocket-Extensions header of a
// client's upgrade request holds an offer of permessage-deflate such a
// server may accept. A malformed header offers nothing; an offer with an
// unknown, repeated or invalid parameter, or one asking for a server
// window under 32 KiB (server_max_window_bits below 15), is declined and
// the next one considered.
func DeflateOffered(h http.Header) bool {
	offers, ok := parseExtensions(h.Values("Sec-WebSocket-Extensions"))
	if !ok {
		return false
	}
	for _, o := range offers {
		if strings.EqualFold(o.name, "permessage-deflate") && deflateAcceptable(o.params) {
			return true
		}
	}
	return false
}

// deflateAcceptable checks the parameters of a permessage-deflate offer
// (RFC 7692 §7.1).
func deflateAcceptable(params []extParam) bool {
	var seen [len(deflateParams)]bool
	for _, p := range params {
		i := slices.IndexFunc(deflateParams[:], func(n string) bool { return strings.EqualFold(n, p.name) })
		if i < 0 || seen[i] {
			return false // unknown, or given twice
		}
		seen[i] = true
		switch deflateParams[i] {
		case "server_no_context_takeover", "client_no_context_takeover":
			if p.hasValue {
				return false
			}
		case "server_max_window_bits":
			// compress/flate's window is 32 KiB: only 15 can be met.
			if !p.hasValue || windowBits(p.value) != 15 {
				return false
			}
		case "client_max_window_bits":
			// Any window the client picks, the inflater reads.
			if p.hasValue && windowBits(p.value) == 0 {
				return false
			}
		}
	}
	return true
}

// deflateParams are the parameters of a permessage-deflate offer.
var deflateParams = [...]string{"server_no_context_takeover", "client_no_context_takeover", "server_max_window_bits", "client_max_window_bits"}

// windowBits is a max_window_bits value, 8 to 15 without a leading zero,
// or 0 when v is not one.
func windowBits(v string) int {
	switch {
	case len(v) == 1 && v[0] >= '8' && v[0] <= '9':
		return int(v[0] - '0')
	case len(v) == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5':
		return 10 + int(v[1]-'0')
	}
	return 0
}

// parseExtensions parses the values of Sec-WebSocket-Extensions (RFC 6455
// §9.1): a comma-separated list of extensions, each a token and
// parameters "; name[=value]", a value a token or a quoted string that
// unescapes to one. Empty elements are skipped. ok is false when any value
// is malformed.
func parseExtensions(values []string) (offers []extOffer, ok bool) {
	for _, v := range values {
		p := extParser{s: v}
		for {
			p.skipSpace()
			if p.eof() {
				break
			}
			if p.peek() == ',' {
				p.i++
				continue
			}
			o, ok := p.offer()
			if !ok {
				return nil, false
			}
			offers = append(offers, o)
		}
	}
	return offers, true
}

// extParser reads one header value.
type extParser struct {
	s string
	i int
}

func (p *extParser) eof() bool  { return p.i >= len(p.s) }
func (p *extParser) peek() byte { return p.s[p.i] }

func (p *extParser) skipSpace() {
	for !p.eof() && (p.peek() == ' ' || p.peek() == '\t') {
		p.i++
	}
}

// offer reads an extension and its parameters, up to the comma that ends
// it (consumed) or the end of the value.
func (p *extParser) offer() (o extOffer, ok bool) {
	if o.name = p.token(); o.name == "" {
		return o, false
	}
	for {
		p.skipSpace()
		if p.eof() {
			return o, true
		}
		switch p.peek() {
		case ',':
			p.i++
			return o, true
		case ';':
			p.i++
		default:
			return o, false
		}
		p.skipSpace()
		var prm extParam
		if prm.name = p.token(); prm.name == "" {
			return o, false
		}
		p.skipSpace()
		if !p.eof() && p.peek() == '=' {
			p.i++
			p.skipSpace()
			prm.hasValue = true
			if prm.value, ok = p.value(); !ok {
				return o, false
			}
		}
		o.params = append(o.params, prm)
	}
}

// value reads a parameter's value: a token, or a quoted string whose
// unescaped content is a token (§9.1).
func (p *extParser) value() (string, bool) {
	if p.eof() || p.peek() != '"' {
		t := p.token()
		return t, t != ""
	}
	p.i++
	var b strings.Builder
	for !p.eof() {
		c := p.peek()
		p.i++
		switch {
		case c == '"':
			v := b.String()
			return v, v != "" && isToken(v)
		case c == '\\':
			if p.eof() {
				return "", false
			}
			c = p.peek()
			p.i++
		}
		b.WriteByte(c)
	}
	return "", false
}

// token reads the longest run of token characters (RFC 7230 §3.2.6).
func (p *extParser) token() string {
	start := p.i
	for !p.eof() && isTokenChar(p.peek()) {
		p.i++
	}
	return p.s[start:p.i]
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return s != ""
}

// isTokenChar reports whether c is a tchar of RFC 7230 §3.2.6.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
