package server

import (
	"time"

	"github.com/roomd/roomd/server/auth"
)

// devIdentity is every connection's identity in dev mode.
var devIdentity = &auth.Identity{Dev: true}

// verify turns a token into an identity. In dev mode (no key configured)
// every connection is anonymous with every permission, token or not.
func (s *Server) verify(tok string) (*auth.Identity, error) {
	if s.devMode() {
		return devIdentity, nil
	}
	ident, err := s.cfg.Auth.Verify(tok)
	if err != nil {
		s.authFailed(auth.Reason(err))
		return nil, err
	}
	return ident, nil
}

// expiry is when a connection or stream of ident ends for its token: the
// token's exp plus the verifier's leeway, as at hello; zero when the token
// does not expire.
func (s *Server) expiry(ident *auth.Identity) time.Time {
	if ident.Expires.IsZero() || s.cfg.Auth == nil {
		return ident.Expires
	}
	return ident.Expires.Add(s.cfg.Auth.Leeway())
}
