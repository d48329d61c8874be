package server

import (
	"context"
	"errors"
	"log/slog"

	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/server/auth"
)

// The ops of a session after hello: each checks its frame, the permission
// it needs and the session's rooms, calls the router, and answers.

func (ss *session) handleFrame(f *protocol.Frame) {
	ctx := context.Background()
	switch f.T {
	case protocol.TypeJoin:
		ss.opJoin(ctx, f)
	case protocol.TypeLeave:
		ss.opLeave(ctx, f)
	case protocol.TypePub:
		ss.opPub(ctx, f)
	case protocol.TypePres:
		ss.opPres(ctx, f)
	case protocol.TypeSet:
		ss.opSet(ctx, f)
	case protocol.TypeAuth:
		ss.opAuth(f)
	case protocol.TypeHello:
		ss.replyErr(f.ID, "", protocol.NewError(protocol.CodeBadRequest, "hello was already received"))
	default:
		ss.replyErr(f.ID, f.R, protocol.Errorf(protocol.CodeUnknownType, "unknown frame type %q", f.T))
	}
}

// checkRoom validates the room of an op and the permission it needs.
func (ss *session) checkRoom(f *protocol.Frame, perm auth.Perm, mustBeJoined bool) bool {
	if f.R == "" {
		ss.replyErr(f.ID, "", protocol.NewError(protocol.CodeBadRequest, "missing key \"r\""))
		return false
	}
	if !protocol.ValidRoomName(f.R) {
		ss.replyErr(f.ID, "", protocol.NewError(protocol.CodeInvalidRoom, "invalid room name"))
		return false
	}
	if !ss.ident.Load().Can(f.R, perm) {
		ss.srv.authFailed("forbidden")
		ss.replyErr(f.ID, f.R, protocol.Errorf(protocol.CodeForbidden, "token lacks %q for this room", perm.String()))
		return false
	}
	if mustBeJoined && !ss.joined(f.R) {
		ss.replyErr(f.ID, f.R, protocol.NewError(protocol.CodeNotJoined, "join the room first"))
		return false
	}
	return true
}

func (ss *session) joined(name string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.rooms.has(name)
}

func (ss *session) opJoin(ctx context.Context, f *protocol.Frame) {
	if !ss.checkRoom(f, auth.PermJoin, false) {
		return
	}
	ss.mu.Lock()
	already := ss.rooms.has(f.R)
	full := len(ss.rooms) >= ss.srv.cfg.MaxRoomsPerConn
	if !already && !full {
		ss.rooms.add(f.R) // claimed now; a KindLeft may remove it
	}
	ss.mu.Unlock()
	switch {
	case already:
		ss.replyErr(f.ID, f.R, protocol.NewError(protocol.CodeAlreadyJoined, "already joined"))
		return
	case full:
		ss.replyErr(f.ID, f.R, protocol.Errorf(protocol.CodeLimit, "at most %d rooms per connection", ss.srv.cfg.MaxRoomsPerConn))
		return
	}
	if f.H < 0 {
		f.H = 0
	}
	ident := ss.ident.Load()
	err := ss.srv.cfg.Router.Join(ctx, room.JoinRequest{
		ID: f.ID, Room: f.R, Conn: ss.id, User: ss.user, Info: protocol.Raw(ident.Info),
		Presence: f.P, Since: f.Since, History: int(min(f.H, 1<<20)),
	}, ss)
	if err != nil {
		ss.mu.Lock()
		ss.rooms.remove(f.R)
		ss.mu.Unlock()
		ss.replyErr(f.ID, f.R, err)
	}
}

func (ss *session) opLeave(ctx context.Context, f *protocol.Frame) {
	if f.R == "" || !protocol.ValidRoomName(f.R) {
		ss.replyErr(f.ID, "", protocol.NewError(protocol.CodeInvalidRoom, "invalid room name"))
		return
	}
	ss.mu.Lock()
	ok := ss.rooms.remove(f.R)
	ss.mu.Unlock()
	if !ok {
		ss.replyErr(f.ID, f.R, protocol.NewError(protocol.CodeNotJoined, "not joined"))
		return
	}
	ss.srv.cfg.Router.Leave(ctx, f.R, ss)
	ss.replyOK(f.ID, 0)
}

func (ss *session) opPub(ctx context.Context, f *protocol.Frame) {
	if !ss.checkRoom(f, auth.PermPub, true) {
		return
	}
	if len(f.Key) > protocol.MaxIdempotencyKey {
		ss.replyErr(f.ID, f.R, protocol.Errorf(protocol.CodeTooLarge, "idempotency key over %d bytes", protocol.MaxIdempotencyKey))
		return
	}
	if f.D == nil {
		ss.replyErr(f.ID, f.R, protocol.NewError(protocol.CodeBadRequest, "missing key \"d\""))
		return
	}
	seq, err := ss.srv.cfg.Router.Publish(ctx, room.PublishRequest{
		Room: f.R, Conn: ss.id, User: ss.user, Data: f.D, Ephemeral: f.Eph, Key: f.Key,
	})
	if err != nil {
		if !f.Eph || f.ID != 0 {
			ss.replyErr(f.ID, f.R, err)
		}
		return
	}
	if !f.Eph {
		ss.replyOK(f.ID, seq)
	}
}

func (ss *session) opPres(ctx context.Context, f *protocol.Frame) {
	if !ss.checkRoom(f, auth.PermPres, true) {
		return
	}
	if err := ss.srv.cfg.Router.UpdatePresence(ctx, room.PresenceRequest{Room: f.R, Conn: ss.id, Data: f.D}); err != nil {
		ss.replyErr(f.ID, f.R, err)
		return
	}
	ss.replyOK(f.ID, 0)
}

func (ss *session) opSet(ctx context.Context, f *protocol.Frame) {
	if !ss.checkRoom(f, auth.PermState, true) {
		return
	}
	if f.K == "" {
		ss.replyErr(f.ID, f.R, protocol.NewError(protocol.CodeBadRequest, "missing key \"k\""))
		return
	}
	if len(f.K) > protocol.MaxStateKey {
		ss.replyErr(f.ID, f.R, protocol.Errorf(protocol.CodeTooLarge, "state key over %d bytes", protocol.MaxStateKey))
		return
	}
	seq, err := ss.srv.cfg.Router.SetState(ctx, room.SetRequest{
		Room: f.R, Conn: ss.id, User: ss.user, Key: f.K, Value: f.D,
	})
	if err != nil {
		ss.replyErr(f.ID, f.R, err)
		return
	}
	ss.replyOK(f.ID, seq)
}

// opAuth swaps the connection's token for a fresh one of the same user.
func (ss *session) opAuth(f *protocol.Frame) {
	ident, err := ss.srv.verify(f.Tok)
	if err != nil || ident.User != ss.user {
		ss.replyErr(f.ID, "", protocol.NewError(protocol.CodeUnauthorized, "token refused; the current one stays in force"))
		return
	}
	ss.ident.Store(ident)
	ss.mu.Lock()
	if !ss.closing {
		ss.armExpiryLocked(ident)
	}
	ss.mu.Unlock()
	ss.replyOK(f.ID, 0)
}

func (ss *session) replyOK(id, seq uint64) {
	if id == 0 {
		return
	}
	ss.enqueue(protocol.MustEncode(protocol.OK{T: protocol.TypeOK, ID: id, S: seq}), durable, "", "")
}

func (ss *session) replyErr(id uint64, roomName string, err error) {
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		ss.log.Error("room operation failed", slog.String(logKeyConn, ss.id), slog.Any(logKeyErr, err))
		pe = protocol.NewError(protocol.CodeInternal, "internal error")
	}
	ss.srv.errorCode(pe.Code)
	ss.enqueue(protocol.MustEncode(protocol.Err{T: protocol.TypeErr, ID: id, R: roomName, Code: pe.Code, Msg: pe.Msg}), durable, "", "")
}

// roomSet is the rooms a session joined: a few names (at most
// MaxRoomsPerConn), kept in a slice, which costs an idle connection less
// than a map.
type roomSet []string

func (rs roomSet) has(name string) bool {
	for _, r := range rs {
		if r == name {
			return true
		}
	}
	return false
}

func (rs *roomSet) add(name string) { *rs = append(*rs, name) }

// remove takes name out and reports whether it was there.
func (rs *roomSet) remove(name string) bool {
	for i, r := range *rs {
		if r == name {
			last := len(*rs) - 1
			(*rs)[i] = (*rs)[last]
			(*rs)[last] = ""
			*rs = (*rs)[:last]
			if last == 0 {
				*rs = nil
			}
			return true
		}
	}
	return false
}
