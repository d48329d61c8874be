package auth

import (
	"net/http"
	"strings"
)

// Where TokenFromRequest looks for a token besides the Authorization header.
const (
	// CookieName is the cookie holding a token.
	CookieName = "roomd_token"
	// QueryParam is the query parameter holding a token, for clients (such
	// as EventSource) that can set neither header nor cookie. URLs get
	// logged; callers must not log it.
	QueryParam = "token"
)

// TokenFromRequest returns the token of r, or "" if it carries none: from an
// "Authorization: Bearer <token>" header (the scheme is case-insensitive),
// else from the roomd_token cookie, else, only when allowQuery, from the
// ?token= query parameter. An Authorization header of another scheme is
// ignored.
func TokenFromRequest(r *http.Request, allowQuery bool) string {
	if tok, ok := bearer(r.Header.Get("Authorization")); ok && tok != "" {
		return tok
	}
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		return c.Value
	}
	if allowQuery && r.URL != nil {
		return r.URL.Query().Get(QueryParam)
	}
	return ""
}

// bearer returns the credentials of a "Bearer <credentials>" header value.
func bearer(h string) (string, bool) {
	const scheme = "bearer "
	h = strings.TrimSpace(h)
	if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	return strings.TrimSpace(h[len(scheme):]), true
}
