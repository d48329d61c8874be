package server

import (
	"net/http"
	"net/url"
	"strings"
)

// originAllowed applies Config.AllowedOrigins to a request. A request
// without an Origin header (not from a browser) is always allowed.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if s.cfg.AllowedOrigins == nil {
		if s.devMode() {
			return true
		}
		u, err := url.Parse(origin)
		return err == nil && strings.EqualFold(u.Host, r.Host)
	}
	for _, o := range s.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// cors sets the CORS headers for an allowed cross-origin request and
// reports whether the origin is allowed.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if !s.originAllowed(r) {
		return false
	}
	if origin != "" {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Expose-Headers", "X-Roomd-Replay-From, X-Roomd-Epoch")
	}
	return true
}

// devMode reports whether no token key is configured.
func (s *Server) devMode() bool { return s.cfg.Auth == nil || s.cfg.Auth.Dev() }
