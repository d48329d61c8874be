package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/roomd/roomd/hooks"
	"github.com/roomd/roomd/protocol"
)

// The dead-letter store of this node's hooks (docs/OPERATIONS.md, "Hooks"),
// behind the API key like the rest of the API. Each node keeps its own: the
// events that node failed to deliver as a room's owner.

const apiDeadLettersDefault = 100

// apiDeadLetters → {"dead_letters": [entry], "next": ID}: the entries with
// an ID above ?after= (default 0), oldest first, at most ?limit= (default
// 100); next is the last ID returned (the next page's after).
func (s *Server) apiDeadLetters(_ http.ResponseWriter, r *http.Request) ([]byte, error) {
	q := r.URL.Query()
	var after uint64
	var err error
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "after=%q is not an id", v)
		}
	}
	limit := apiDeadLettersDefault
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "limit=%q is not a positive integer", v)
		}
	}
	out := struct {
		DeadLetters []hooks.DeadLetter `json:"dead_letters"`
		Next        uint64             `json:"next"`
	}{DeadLetters: s.cfg.Hooks.DeadLetters(after, limit), Next: after}
	if out.DeadLetters == nil {
		out.DeadLetters = []hooks.DeadLetter{}
	}
	if n := len(out.DeadLetters); n > 0 {
		out.Next = out.DeadLetters[n-1].ID
	}
	return json.Marshal(out)
}

// apiReplayDeadLetters → {"replayed": n}: queues the entries of ?ids=1,2
// (none: every entry) for delivery again, and takes them out of the store.
func (s *Server) apiReplayDeadLetters(_ http.ResponseWriter, r *http.Request) ([]byte, error) {
	ids, err := deadLetterIDs(r)
	if err != nil {
		return nil, err
	}
	return []byte(`{"replayed":` + strconv.Itoa(s.cfg.Hooks.Replay(ids)) + `}`), nil
}

// apiDiscardDeadLetters → {"discarded": n}: drops the entries of ?ids=1,2
// (none: every entry).
func (s *Server) apiDiscardDeadLetters(_ http.ResponseWriter, r *http.Request) ([]byte, error) {
	ids, err := deadLetterIDs(r)
	if err != nil {
		return nil, err
	}
	return []byte(`{"discarded":` + strconv.Itoa(s.cfg.Hooks.Discard(ids)) + `}`), nil
}

// deadLetterIDs reads ?ids=1,2,3; nil when absent (every entry).
func deadLetterIDs(r *http.Request) ([]uint64, error) {
	v := r.URL.Query().Get("ids")
	if v == "" {
		return nil, nil
	}
	var ids []uint64
	for _, f := range strings.Split(v, ",") {
		id, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
		if err != nil {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "ids=%q is not a list of ids", v)
		}
		ids = append(ids, id)
	}
	return ids, nil
}
