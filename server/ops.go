package server

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"time"

	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/server/auth"
)

// The ops of a session after hello: each checks its frame, the permission
// it needs and the session's rooms, calls the router, and answers.

func (ss *session) handleFrame(f *protocol.Frame) {
	switch f.T {
	case protocol.TypeJoin:
		ss.opJoin(f)
	case protocol.TypeLeave:
		ss.opLeave(f)
	case protocol.TypePub:
		ss.opPub(f)
	case protocol.TypePres:
		ss.opPres(f)
	case protocol.TypeSet:
		ss.opSet(f)
	case protocol.TypeAuth:
		ss.opAuth(f)
	case protocol.TypeHello:
		ss.replyErr(f.ID, "", protocol.NewError(protocol.CodeBadRequest, "hello was already received"))
	default:
		ss.replyErr(f.ID, f.R, protocol.Errorf(protocol.CodeUnknownType, "unknown frame type %q", f.T))
	}
}

// submit hands a checked op's router call to the room's queue (roomops.go).
// Beyond MaxOpsInFlight it answers err 7 and reports false.
func (ss *session) submit(f *protocol.Frame, op func(ctx context.Context)) bool {
	// The reader may wait for a slot: what it answered goes out first.
	if ss.ops.submit(f.R, ss.srv.cfg.MaxOpsInFlight, op, ss.writeOwn) {
		return true
	}
	ss.srv.cfg.Metrics.LimitRefused(limitConnOps)
	ss.replyErr(f.ID, f.R, protocol.Errorf(protocol.CodeOverloaded, "over %d operations in flight on this connection", ss.srv.cfg.MaxOpsInFlight))
	return false
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

func (ss *session) opJoin(f *protocol.Frame) {
	if !ss.checkRoom(f, auth.PermJoin, false) {
		return
	}
	if !f.P.IsNil() && !ss.ident.Load().Can(f.R, auth.PermPres) {
		ss.srv.authFailed("forbidden")
		ss.replyErr(f.ID, f.R, protocol.NewError(protocol.CodeForbidden, "token lacks \"pres\" for this room: join without \"p\""))
		return
	}
	ss.mu.Lock()
	already := ss.rooms.has(f.R)
	full := len(ss.rooms) >= ss.srv.cfg.MaxRoomsPerConn
	var claim uint64
	if !already && !full {
		ss.claims++
		claim = ss.claims
		ss.rooms.add(f.R, claim) // claimed now; a KindLeft may remove it
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
	req := room.JoinRequest{
		ID: f.ID, Room: f.R, Conn: ss.id, User: ss.user, Info: protocol.Raw(ident.Info),
		Presence: f.P, Since: f.Since, History: int(min(f.H, 1<<20)),
	}
	unclaim := func() {
		ss.mu.Lock()
		ss.rooms.removeClaim(req.Room, claim) // not a later join's claim
		ss.mu.Unlock()
	}
	id := f.ID
	ok := ss.submit(f, func(ctx context.Context) {
		if err := ss.srv.hookJoin(ctx, &req); err != nil {
			unclaim()
			ss.replyErr(id, req.Room, err)
			return
		}
		err := ss.srv.cfg.Router.Join(ctx, req, ss)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			// The connection ended: the join may have been done all the same.
			ss.srv.cfg.Router.Drop(context.Background(), req.Room, ss)
		}
		unclaim()
		ss.replyErr(id, req.Room, err)
	})
	if !ok {
		unclaim()
	}
}

func (ss *session) opLeave(f *protocol.Frame) {
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
	id := f.ID
	ss.leave(f.R, func() { ss.replyOK(id, 0) })
}

// leave takes the session out of a room it no longer has in ss.rooms,
// behind the room's earlier ops (a join still queued included), then calls
// then. A leave is never refused: it frees what the room holds, and there
// are never more of them than joins.
func (ss *session) leave(name string, then func()) {
	ss.ops.submit(name, math.MaxInt, func(ctx context.Context) {
		ss.srv.cfg.Router.Leave(ctx, name, ss)
		then()
	}, nil)
}

func (ss *session) opPub(f *protocol.Frame) {
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
	req := room.PublishRequest{Room: f.R, Conn: ss.id, User: ss.user, Data: f.D, Ephemeral: f.Eph, Key: f.Key}
	id := f.ID
	if f.Eph && id == 0 && ss.ops.full(ss.srv.cfg.MaxOpsInFlight) {
		ss.srv.cfg.Metrics.LimitRefused(limitConnOps) // nobody to tell: dropped
		return
	}
	ticket, ok := ss.admitPub(f)
	if !ok {
		return
	}
	read := time.Now()
	ss.submit(f, func(ctx context.Context) {
		ticket.ObserveQueue(time.Since(read))
		if err := ss.srv.hookPublish(ctx, &req); err != nil {
			ss.replyErr(id, req.Room, err)
			return
		}
		seq, err := ss.srv.cfg.Router.Publish(ctx, req)
		if err != nil {
			if !req.Ephemeral || id != 0 {
				ss.replyErr(id, req.Room, err)
			}
			return
		}
		if !req.Ephemeral {
			ss.replyOK(id, seq)
		}
	})
}

func (ss *session) opPres(f *protocol.Frame) {
	if !ss.checkRoom(f, auth.PermPres, true) {
		return
	}
	req := room.PresenceRequest{Room: f.R, Conn: ss.id, Data: f.D}
	id := f.ID
	ss.submit(f, func(ctx context.Context) {
		if err := ss.srv.cfg.Router.UpdatePresence(ctx, req); err != nil {
			ss.replyErr(id, req.Room, err)
			return
		}
		ss.replyOK(id, 0)
	})
}

func (ss *session) opSet(f *protocol.Frame) {
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
	req := room.SetRequest{Room: f.R, Conn: ss.id, User: ss.user, Key: f.K, Value: f.D}
	id := f.ID
	ss.submit(f, func(ctx context.Context) {
		seq, err := ss.srv.cfg.Router.SetState(ctx, req)
		if err != nil {
			ss.replyErr(id, req.Room, err)
			return
		}
		ss.replyOK(id, seq)
	})
}

// opAuth swaps the connection's token for a fresh one of the same user. A
// token that narrows the permissions takes the connection out of the rooms
// it may no longer join, each with left code 107.
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
	var lost []string // rooms the new token may not join
	for _, r := range ss.rooms {
		if !ident.Can(r.name, auth.PermJoin) {
			lost = append(lost, r.name)
		}
	}
	for _, name := range lost {
		ss.rooms.remove(name)
	}
	ss.mu.Unlock()
	ss.replyOK(f.ID, 0)
	for _, name := range lost {
		ss.leave(name, func() {
			ss.srv.authFailed("forbidden")
			ss.enqueue(protocol.MustEncode(protocol.Left{T: protocol.TypeLeft, R: name, Code: protocol.CodeForbidden,
				Msg: "the refreshed token does not allow this room"}), durable, "", "")
		})
	}
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
	e := protocol.Err{T: protocol.TypeErr, ID: id, R: roomName, Code: pe.Code, Msg: pe.Msg}
	ss.enqueue(protocol.AppendErr(make([]byte, 0, 24+len(roomName)+len(pe.Msg)), e), durable, "", "")
}

// roomSet is the rooms a session joined: a few names (at most
// MaxRoomsPerConn), kept in a slice, which costs an idle connection less
// than a map. Each entry carries the number of the join that claimed it, so
// that a join that fails late takes out its own claim, never a later one.
type roomSet []roomEntry

type roomEntry struct {
	name  string
	claim uint64
}

func (rs roomSet) has(name string) bool {
	for _, r := range rs {
		if r.name == name {
			return true
		}
	}
	return false
}

func (rs *roomSet) add(name string, claim uint64) {
	*rs = append(*rs, roomEntry{name: name, claim: claim})
}

// remove takes name out and reports whether it was there.
func (rs *roomSet) remove(name string) bool { return rs.removeIf(name, 0) }

// removeClaim takes name out if the join numbered claim put it there.
func (rs *roomSet) removeClaim(name string, claim uint64) bool { return rs.removeIf(name, claim) }

// removeIf takes name out, if claim is 0 or the entry's claim.
func (rs *roomSet) removeIf(name string, claim uint64) bool {
	for i, r := range *rs {
		if r.name == name && (claim == 0 || r.claim == claim) {
			last := len(*rs) - 1
			(*rs)[i] = (*rs)[last]
			(*rs)[last] = roomEntry{}
			*rs = (*rs)[:last]
			if last == 0 {
				*rs = nil
			}
			return true
		}
	}
	return false
}

// names lists the rooms.
func (rs roomSet) names() []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.name
	}
	return out
}
