package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/roomd/roomd/hooks"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/server/auth"
)

// The calls of the backend hooks that decide (docs/PROTOCOL.md, "Hooks"):
// connect at hello, join before a member joins, publish before a durable
// message is committed. A refusal is err 110 denied (bye 501 at connect);
// a failure the hook's policy denies is err 6 unavailable.

var errHookFailed = protocol.NewError(protocol.CodeUnavailable, "the application's backend is unavailable; retry")

// Errors of hookConnect: the connection ends with bye 501 (refused) or
// bye 6 (failed, under a denying policy).
var (
	errConnectRefused = errors.New("refused by the application")
	errConnectFailed  = errors.New("the application's backend is unavailable")
)

// connectRequest captures what the connect hook is told of an upgrade
// request, or nil when the hook is off.
func (s *Server) connectRequest(r *http.Request, addr netip.Addr) *hooks.ConnectRequest {
	if !s.cfg.Hooks.On(hooks.Connect, "") {
		return nil
	}
	req := &hooks.ConnectRequest{Addr: addr.String()}
	for _, c := range r.Cookies() {
		if req.Cookies == nil {
			req.Cookies = map[string]string{}
		}
		req.Cookies[c.Name] = c.Value
	}
	for _, h := range s.cfg.Hooks.ConnectHeaders() {
		if v := r.Header.Get(h); v != "" {
			if req.Headers == nil {
				req.Headers = map[string]string{}
			}
			req.Headers[http.CanonicalHeaderKey(h)] = v
		}
	}
	return req
}

// hookConnect asks the connect hook who a connection is. It returns nil
// and no error when the hook is off or failed under an allowing policy:
// the token is then verified as without the hook.
func (s *Server) hookConnect(req *hooks.ConnectRequest, conn, tok string) (*auth.Identity, error) {
	if req == nil {
		return nil, nil
	}
	req.Conn, req.Token = conn, tok
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.HelloTimeout)
	defer cancel()
	res, err := s.cfg.Hooks.Connect(ctx, req)
	switch {
	case err != nil:
		s.authFailed("hook_failed")
		return nil, errConnectFailed
	case res == nil:
		return nil, nil
	case !res.Allow:
		s.authFailed("hook_denied")
		return nil, errConnectRefused
	}
	ident := &auth.Identity{User: res.User}
	if res.Expires > 0 {
		ident.Expires = time.Unix(res.Expires, 0)
	}
	if len(res.Info) > 0 {
		info, err := protocol.FromJSON(res.Info)
		if err != nil {
			s.authFailed("hook_failed")
			return nil, errConnectFailed
		}
		ident.Info = msgpack.RawMessage(info)
	}
	if ident.Grants, err = auth.GrantsFromRooms(res.Rooms); err != nil {
		s.authFailed("hook_failed")
		return nil, errConnectFailed
	}
	return ident, nil
}

// hookJoin asks the join hook whether a member may join; its answer may
// replace the member's presence.
func (s *Server) hookJoin(ctx context.Context, req *room.JoinRequest) error {
	if !s.cfg.Hooks.On(hooks.Join, req.Room) {
		return nil
	}
	hr := &hooks.JoinRequest{Room: req.Room, Conn: req.Conn, User: req.User}
	var err error
	if hr.Info, err = hooks.JSONData(req.Info); err != nil {
		return err
	}
	if hr.Presence, err = hooks.JSONData(req.Presence); err != nil {
		return err
	}
	res, err := s.cfg.Hooks.Join(ctx, hr)
	return answered(err, res.Allow, res.Reason, res.Presence, &req.Presence)
}

// hookPublish asks the publish hook whether a durable message may be
// committed; its answer may replace the payload. Ephemeral messages are not
// asked about.
func (s *Server) hookPublish(ctx context.Context, req *room.PublishRequest) error {
	if req.Ephemeral || !s.cfg.Hooks.On(hooks.Publish, req.Room) {
		return nil
	}
	data, err := hooks.JSONData(req.Data)
	if err != nil {
		return err
	}
	res, err := s.cfg.Hooks.Publish(ctx, &hooks.PublishRequest{Room: req.Room, Conn: req.Conn, User: req.User, API: req.FromAPI, Data: data})
	return answered(err, res.Allow, res.Reason, res.Data, &req.Data)
}

// answered is the op's error after a deciding hook: unavailable when it
// failed (under a denying policy), denied (110, the backend's reason) when
// it refused; else nil, with the answer's replacement, when it has one,
// stored at into (the room checks it as it would the original). The
// replacement must be JSON that converts to msgpack, or the hook failed.
func answered(err error, allow bool, reason string, replacement json.RawMessage, into *protocol.Raw) error {
	switch {
	case err != nil:
		return errHookFailed
	case !allow:
		if reason == "" {
			reason = "refused by the application"
		}
		return protocol.NewError(protocol.CodeDenied, reason)
	case len(replacement) == 0:
		return nil
	}
	p, err := hooks.MsgpackData(replacement)
	if err != nil {
		return errHookFailed
	}
	*into = p
	return nil
}
