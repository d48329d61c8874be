package server

import (
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
