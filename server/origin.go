package server

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// ErrBadOrigin is returned by New when an entry of Config.AllowedOrigins is
// neither "*" nor a bare origin (scheme://host[:port]).
var ErrBadOrigin = errors.New("server: not an origin")

// origin is a browser origin reduced to what identifies it: its scheme, its
// host name and its port (the scheme's default when none is written), all
// lower case. Two origins are the same exactly when these are equal.
type origin struct {
	scheme, host, port string
}

// parseOrigin reads a bare http or https origin, scheme://host[:port],
// optionally with a trailing slash. Userinfo, a path, a query or a fragment
// make it no origin: browsers never send them.
func parseOrigin(s string) (origin, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.User != nil || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return origin{}, false
	}
	o := origin{scheme: strings.ToLower(u.Scheme), host: strings.ToLower(u.Hostname()), port: u.Port()}
	if o.host == "" {
		return origin{}, false
	}
	def := defaultPort(o.scheme)
	if def == "" {
		return origin{}, false
	}
	if o.port == "" {
		o.port = def
	}
	return o, true
}

func defaultPort(scheme string) string {
	switch scheme {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return ""
}

// originPolicy is Config.AllowedOrigins, parsed once.
type originPolicy struct {
	set   bool              // a list was configured
	any   bool              // the list holds "*"
	exact map[origin]string // the listed origins
}

func newOriginPolicy(list []string) (originPolicy, error) {
	p := originPolicy{set: list != nil, exact: make(map[origin]string)}
	for _, s := range list {
		if s == "*" {
			p.any = true
			continue
		}
		o, ok := parseOrigin(s)
		if !ok {
			return originPolicy{}, fmt.Errorf("%w: %q (want \"*\" or scheme://host[:port])", ErrBadOrigin, s)
		}
		p.exact[o] = s
	}
	return p, nil
}

// originMatch is how a request's Origin fared.
type originMatch int

const (
	originRefused  originMatch = iota
	originNone                 // no Origin header: not a browser's cross-origin request
	originExact                // a listed origin, or the node's own
	originWildcard             // allowed by "*" or by dev mode: any site may send it
)

// originAllowed applies Config.AllowedOrigins to a request, for gorilla's
// CheckOrigin. A request without an Origin header is always allowed.
func (s *Server) originAllowed(r *http.Request) bool {
	return s.matchOrigin(r) != originRefused
}

// matchOrigin compares the request's Origin with the allow-list: scheme,
// host and port must all be equal. Without a list, dev mode allows any
// origin and otherwise only the node's own host (sameHost).
func (s *Server) matchOrigin(r *http.Request) originMatch {
	raw := r.Header.Get("Origin")
	if raw == "" {
		return originNone
	}
	o, ok := parseOrigin(raw)
	switch {
	case ok && s.origins.exact[o] != "":
		return originExact
	case s.origins.any:
		return originWildcard
	case s.origins.set:
		return originRefused
	case s.devMode():
		return originWildcard
	case ok && sameHost(o, r):
		return originExact
	}
	return originRefused
}

// sameHost reports whether an origin names the host and port the request
// was sent to. Over TLS the origin must be https; over plain HTTP (perhaps
// behind a proxy that ends TLS) either scheme passes. The Host header's port
// defaults to the origin scheme's.
func sameHost(o origin, r *http.Request) bool {
	if r.TLS != nil && o.scheme != "https" {
		return false
	}
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		host, port = r.Host, ""
	}
	if port == "" {
		port = defaultPort(o.scheme)
	}
	return strings.EqualFold(host, o.host) && port == o.port
}

// cors sets the CORS headers for an allowed cross-origin request and
// reports whether the origin is allowed. A listed origin is echoed with
// Access-Control-Allow-Credentials; one allowed only by "*" (or dev mode)
// gets "Access-Control-Allow-Origin: *" and never credentials, so no other
// site can read an answer made with the visitor's cookies.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	m := s.matchOrigin(r)
	h := w.Header()
	switch m {
	case originRefused:
		return false
	case originExact:
		h.Set("Access-Control-Allow-Origin", r.Header.Get("Origin"))
		h.Set("Access-Control-Allow-Credentials", "true")
	case originWildcard:
		h.Set("Access-Control-Allow-Origin", "*")
	case originNone:
		return true
	}
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", "X-Roomd-Replay-From, X-Roomd-Epoch")
	return true
}

// devMode reports whether no token key is configured.
func (s *Server) devMode() bool { return s.cfg.Auth == nil || s.cfg.Auth.Dev() }
