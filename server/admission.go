package server

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/server/admission"
)

// Admission by measured delay (package admission): every publish, from a
// connection or the HTTP API, asks the node's controller before it goes to
// its room; a refused one is answered at once with err 7 overloaded (HTTP
// 503 with Retry-After). The node measures the delay from an event's
// creation to its write on each socket (wrote, outbound.go) and, per room,
// the wait of each admitted publish between its read and the start of its
// operation (opPub, ops.go). In a cluster the node that reads the publish
// decides, from its own measures.

// Log keys of the admission debug line.
const (
	logKeyNodeLimit    = "node_limit"
	logKeyLimitedRooms = "limited_rooms"
	logKeyRoomLimit    = "lowest_room_limit"
	logKeyWriteDelay   = "write_delay"
	logKeyQueueDelay   = "queue_delay"
	logKeyAdmitted     = "admitted"
	logKeyRefused      = "refused"
)

// newAdmission makes the node's controller from the config.
func (s *Server) newAdmission() *admission.Controller {
	return admission.New(admission.Config{
		Target:   s.cfg.AdmissionTarget,
		Interval: s.cfg.AdmissionInterval,
		Report: func(st admission.State) {
			s.cfg.Metrics.AdmissionState(st)
			if (st.NodeLimit > 0 || st.LimitedRooms > 0) && s.cfg.Logger.Enabled(context.Background(), slog.LevelDebug) {
				s.cfg.Logger.Debug("admission limits",
					slog.Float64(logKeyNodeLimit, st.NodeLimit), slog.Int(logKeyLimitedRooms, st.LimitedRooms),
					slog.Float64(logKeyRoomLimit, st.RoomLimit), slog.Duration(logKeyWriteDelay, st.WriteDelay),
					slog.Duration(logKeyQueueDelay, st.QueueDelay), slog.Int(logKeyAdmitted, st.Admitted),
					slog.Int(logKeyRefused, st.Refused))
			}
		},
	})
}

// errOverloaded is the refusal of a publish by admission.
func errOverloaded(r admission.Reason) *protocol.Error {
	if r == admission.RefusedPublisher {
		return protocol.NewError(protocol.CodeOverloaded, "node overloaded: this publisher is over its share of the room; retry later")
	}
	return protocol.NewError(protocol.CodeOverloaded, "node overloaded: this room is over its share; retry later")
}

// admitPub asks admission about a pub frame and answers a refusal (an
// ephemeral pub without id is dropped unanswered, as at the ops bound).
func (ss *session) admitPub(f *protocol.Frame) (admission.Ticket, bool) {
	t, r := ss.srv.adm.Admit(f.R, ss.id)
	if r == admission.Admitted {
		return t, true
	}
	ss.srv.cfg.Metrics.AdmissionRefused(r.String())
	if !f.Eph || f.ID != 0 {
		ss.replyErr(f.ID, f.R, errOverloaded(r))
	}
	return t, false
}

// admitAPI asks admission about a publish through the HTTP API; a refusal
// sets Retry-After and returns the error to answer with.
func (s *Server) admitAPI(w http.ResponseWriter, room string) error {
	_, r := s.adm.Admit(room, "")
	if r == admission.Admitted {
		return nil
	}
	s.cfg.Metrics.AdmissionRefused(r.String())
	w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(s.adm.RetryAfter())))
	return errOverloaded(r)
}

// retryAfterSeconds rounds d up to whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}
