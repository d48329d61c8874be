package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/roomd/roomd/cluster"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// The API's room routes. Each validates the room name, calls the Router and
// builds its JSON answer; payloads are transcoded with protocol.AppendJSON.

// apiHistoryDefault is the history limit when ?limit= is absent. The room's
// history bounds any limit further.
const apiHistoryDefault = 100

// apiKickMsg is the msg of the left frame a kicked connection gets.
const apiKickMsg = "removed by the server"

// publishBody is the body of POST /v1/rooms/{room}/messages.
type publishBody struct {
	Data      protocol.Raw // nil when absent; msgpack nil when null
	Ephemeral bool
	Key       string
}

// decodePublishBody reads {data, ephemeral?, key?} from a msgpack map
// (unknown keys skipped; null ephemeral and key mean their zero values).
func decodePublishBody(raw protocol.Raw) (publishBody, error) {
	var body publishBody
	bad := func(err error) (publishBody, error) {
		return publishBody{}, protocol.Errorf(protocol.CodeBadRequest, "bad body: %v", err)
	}
	dec := msgpack.NewDecoder(bytes.NewReader(raw))
	c, err := dec.PeekCode()
	if err != nil {
		return bad(err)
	}
	if !msgpcode.IsFixedMap(c) && c != msgpcode.Map16 && c != msgpcode.Map32 {
		return publishBody{}, protocol.NewError(protocol.CodeBadRequest, "body must be an object {data, ephemeral?, key?}")
	}
	n, err := dec.DecodeMapLen()
	if err != nil {
		return bad(err)
	}
	for range n {
		key, err := dec.DecodeString()
		if err != nil {
			return bad(err)
		}
		switch key {
		case "data":
			var b []byte
			if b, err = dec.DecodeRaw(); err == nil {
				body.Data = protocol.Raw(b)
			}
		case "ephemeral":
			if c, _ := dec.PeekCode(); c == msgpcode.Nil {
				err = dec.DecodeNil()
			} else if body.Ephemeral, err = dec.DecodeBool(); err != nil {
				err = fmt.Errorf("ephemeral is not a boolean")
			}
		case "key":
			if c, _ := dec.PeekCode(); c == msgpcode.Nil {
				err = dec.DecodeNil()
			} else if !msgpcode.IsString(c) {
				err = fmt.Errorf("key is not a string")
			} else {
				body.Key, err = dec.DecodeString()
			}
		default:
			err = dec.Skip()
		}
		if err != nil {
			return bad(err)
		}
	}
	if body.Data == nil {
		return publishBody{}, protocol.NewError(protocol.CodeBadRequest, "body has no data")
	}
	return body, nil
}

// apiPublish publishes {data, ephemeral?, key?} → {"seq": n} ({"seq": 0}
// for an ephemeral message). A key seen within the dedupe window answers the
// original seq.
func (s *Server) apiPublish(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	name, err := apiRoomName(r)
	if err != nil {
		return nil, err
	}
	raw, err := s.readBody(w, r)
	if err != nil {
		return nil, err
	}
	body, err := decodePublishBody(raw)
	if err != nil {
		return nil, err
	}
	req := room.PublishRequest{
		Room:      name,
		Data:      body.Data,
		Ephemeral: body.Ephemeral,
		Key:       body.Key,
		FromAPI:   true,
	}
	if err := s.hookPublish(r.Context(), &req); err != nil {
		return nil, err
	}
	seq, err := s.cfg.Router.Publish(r.Context(), req)
	if err != nil {
		return nil, err
	}
	return seqJSON(seq), nil
}

// roomInfoJSON is a live room in GET /v1/rooms/{room} and GET /v1/rooms.
type roomInfoJSON struct {
	Room      string `json:"room"`
	Epoch     string `json:"epoch"`
	Seq       uint64 `json:"seq"`
	Owner     string `json:"owner"`
	Members   int    `json:"members"`
	Observers int    `json:"observers"`
}

func newRoomInfoJSON(ri cluster.RoomInfo) roomInfoJSON {
	return roomInfoJSON{Room: ri.Room, Epoch: ri.Epoch, Seq: ri.Seq, Owner: ri.Owner, Members: ri.Members, Observers: ri.Observers}
}

// apiRoom → {room, epoch, seq, owner, members, observers}.
func (s *Server) apiRoom(_ http.ResponseWriter, r *http.Request) ([]byte, error) {
	name, err := apiRoomName(r)
	if err != nil {
		return nil, err
	}
	info, ok, err := s.cfg.Router.Info(r.Context(), name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, roomNotFound(name)
	}
	return json.Marshal(newRoomInfoJSON(info))
}

// apiRooms → {"rooms": [room info]}, the live rooms whose name starts with
// ?prefix=, sorted by name.
func (s *Server) apiRooms(_ http.ResponseWriter, r *http.Request) ([]byte, error) {
	infos, err := s.cfg.Router.Rooms(r.Context(), r.URL.Query().Get("prefix"))
	if err != nil {
		return nil, err
	}
	out := struct {
		Rooms []roomInfoJSON `json:"rooms"`
	}{Rooms: make([]roomInfoJSON, len(infos))}
	for i, ri := range infos {
		out.Rooms[i] = newRoomInfoJSON(ri)
	}
	slices.SortFunc(out.Rooms, func(a, b roomInfoJSON) int { return strings.Compare(a.Room, b.Room) })
	return json.Marshal(out)
}

// apiPresence → {"room", "members": [member]}.
func (s *Server) apiPresence(_ http.ResponseWriter, r *http.Request) ([]byte, error) {
	name, err := apiRoomName(r)
	if err != nil {
		return nil, err
	}
	members, ok, err := s.cfg.Router.Presence(r.Context(), name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, roomNotFound(name)
	}
	b := make([]byte, 0, 64+64*len(members))
	b = append(b, `{"room":`...)
	b = protocol.AppendJSONString(b, name)
	b = append(b, `,"members":`...)
	b = appendMembersJSON(b, members)
	return append(b, '}'), nil
}

// apiHistory → {"room", "epoch", "events": [log entry]}: the held durable
// events after ?since= (default 0), oldest first, at most ?limit= (default
// 100) of them.
func (s *Server) apiHistory(_ http.ResponseWriter, r *http.Request) ([]byte, error) {
	name, err := apiRoomName(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	var since uint64
	if v := q.Get("since"); v != "" {
		if since, err = strconv.ParseUint(v, 10, 64); err != nil {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "since=%q is not a seq", v)
		}
	}
	limit := apiHistoryDefault
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "limit=%q is not a positive integer", v)
		}
	}
	epoch, events, ok, err := s.cfg.Router.History(r.Context(), name, since, limit)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, roomNotFound(name)
	}
	b := make([]byte, 0, 64+160*len(events))
	b = append(b, `{"room":`...)
	b = protocol.AppendJSONString(b, name)
	b = append(b, `,"epoch":`...)
	b = protocol.AppendJSONString(b, epoch)
	b = append(b, `,"events":`...)
	b = appendLogJSON(b, events)
	return append(b, '}'), nil
}

// apiState → {"room", "seq", "state": {key: value}}.
func (s *Server) apiState(_ http.ResponseWriter, r *http.Request) ([]byte, error) {
	name, err := apiRoomName(r)
	if err != nil {
		return nil, err
	}
	state, seq, ok, err := s.cfg.Router.State(r.Context(), name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, roomNotFound(name)
	}
	n := 64
	for k, v := range state {
		n += len(k) + 2*len(v) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, `{"room":`...)
	b = protocol.AppendJSONString(b, name)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"state":`...)
	b = appendStateJSON(b, state)
	return append(b, '}'), nil
}

// apiSetState sets a state key to the body's value → {"seq": n}. A null
// value deletes the key, as a set frame without d does.
func (s *Server) apiSetState(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	name, err := apiRoomName(r)
	if err != nil {
		return nil, err
	}
	val, err := s.readBody(w, r)
	if err != nil {
		return nil, err
	}
	return s.apiSet(r, name, val)
}

// apiDeleteState deletes a state key → {"seq": n}.
func (s *Server) apiDeleteState(_ http.ResponseWriter, r *http.Request) ([]byte, error) {
	name, err := apiRoomName(r)
	if err != nil {
		return nil, err
	}
	return s.apiSet(r, name, nil)
}

func (s *Server) apiSet(r *http.Request, name string, val protocol.Raw) ([]byte, error) {
	seq, err := s.cfg.Router.SetState(r.Context(), room.SetRequest{
		Room:    name,
		Key:     r.PathValue("key"),
		Value:   val,
		FromAPI: true,
	})
	if err != nil {
		return nil, err
	}
	return seqJSON(seq), nil
}

// apiKick removes every connection of {user} from the room; each gets left
// with code kicked → {"kicked": n}.
func (s *Server) apiKick(_ http.ResponseWriter, r *http.Request) ([]byte, error) {
	name, err := apiRoomName(r)
	if err != nil {
		return nil, err
	}
	user := r.PathValue("user")
	n, err := s.cfg.Router.Kick(r.Context(), name, user, protocol.CodeKicked, apiKickMsg)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		s.cfg.Logger.Info("kicked by the http api", slog.String(logKeyRoom, name), slog.String(logKeyUser, user), slog.Int("conns", n))
	}
	b := append(make([]byte, 0, 32), `{"kicked":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '}'), nil
}

// apiCluster → {"node": this node's name, "cluster_id": its cluster's
// identity (none for a node without gossip), "formation": "formed" or why
// not yet, "members": [node]}.
func (s *Server) apiCluster(_ http.ResponseWriter, r *http.Request) ([]byte, error) {
	members := s.cfg.Router.Members(r.Context())
	if members == nil {
		members = []cluster.NodeInfo{}
	}
	formation := "formed"
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			formation = err.Error()
		}
	}
	var id string
	if s.clusterID != nil {
		id = s.clusterID()
	}
	return json.Marshal(struct {
		Node      string             `json:"node"`
		ClusterID string             `json:"cluster_id,omitempty"`
		Formation string             `json:"formation"`
		Members   []cluster.NodeInfo `json:"members"`
	}{s.cfg.NodeName, id, formation, members})
}
