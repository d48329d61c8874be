package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/roomd/roomd/protocol"
)

// The HTTP API (PROTOCOL.md §4), for app backends and operators: JSON in and
// out (a request body may also be application/msgpack), authenticated with an
// API key in "Authorization: Bearer <key>". Every room operation goes through
// the Router, so the API works the same whichever node owns a room.
//
// Errors are {"error": {"code", "name", "msg"}} with the HTTP status of the
// code. Each request is counted with Metrics.APIRequest under its route
// pattern; each error with Metrics.ErrorSent.

// apiFunc serves one API route: it returns the JSON body of a 200 answer, or
// an error (a *protocol.Error for anything the caller should see).
type apiFunc func(w http.ResponseWriter, r *http.Request) ([]byte, error)

// apiAuthReason labels a refused API key in Metrics.AuthFailure.
const apiAuthReason = "api_key"

// routeAPI mounts the API's routes. For each path, a request of a method the
// path does not serve gets a CORS preflight answer (OPTIONS) or a 405.
func (s *Server) routeAPI() {
	routes := []struct {
		pattern string
		h       apiFunc
	}{
		{"POST /v1/rooms/{room}/messages", s.apiPublish},
		{"GET /v1/rooms/{room}", s.apiRoom},
		{"GET /v1/rooms/{room}/presence", s.apiPresence},
		{"GET /v1/rooms/{room}/history", s.apiHistory},
		{"GET /v1/rooms/{room}/state", s.apiState},
		{"PUT /v1/rooms/{room}/state/{key}", s.apiSetState},
		{"DELETE /v1/rooms/{room}/state/{key}", s.apiDeleteState},
		{"DELETE /v1/rooms/{room}/members/{user}", s.apiKick},
		{"GET /v1/rooms", s.apiRooms},
		{"GET /v1/cluster", s.apiCluster},
		{"GET /v1/hooks/dead-letters", s.apiDeadLetters},
		{"POST /v1/hooks/dead-letters/replay", s.apiReplayDeadLetters},
		{"DELETE /v1/hooks/dead-letters", s.apiDiscardDeadLetters},
	}
	served := make(map[string][]string) // path → methods
	var paths []string
	for _, rt := range routes {
		s.mux.HandleFunc(rt.pattern, s.apiHandler(rt.pattern, rt.h))
		method, path, _ := strings.Cut(rt.pattern, " ")
		if served[path] == nil {
			paths = append(paths, path)
		}
		served[path] = append(served[path], method)
		if method == http.MethodGet {
			served[path] = append(served[path], http.MethodHead)
		}
	}
	// The other methods are registered one by one: a pattern without a
	// method would conflict with "GET /".
	for _, path := range paths {
		h := s.apiOtherMethod(path, served[path])
		for _, m := range apiMethods {
			if !slices.Contains(served[path], m) {
				s.mux.HandleFunc(m+" "+path, h)
			}
		}
	}
}

// apiMethods are the methods the API answers with 405 (or a preflight, for
// OPTIONS) on a path that does not serve them.
var apiMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

// apiHandler wraps an apiFunc with CORS, authentication, error bodies and
// metrics.
func (s *Server) apiHandler(pattern string, h apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.cfg.Metrics.APIRequest(pattern, s.serveAPI(w, r, h))
	}
}

// serveAPI serves one request and returns the status it answered with.
// The origin and the API key are checked before any of the body is read; a
// refused request's body is never read (refuseBody). Reading the body is
// bounded by APIBodyTimeout (readBody), the route's work by
// APIRequestTimeout, and the answer's write by WriteTimeout beyond that.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, h apiFunc) int {
	if !s.cors(w, r) {
		refuseBody(w, r)
		return s.apiFail(w, r, protocol.NewError(protocol.CodeForbidden, "origin not allowed"))
	}
	if err := s.apiAuth(r); err != nil {
		refuseBody(w, r)
		w.Header().Set("WWW-Authenticate", `Bearer realm="roomd"`)
		return s.apiFail(w, r, err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.APIRequestTimeout)
	defer cancel()
	rc := http.NewResponseController(w)
	// Writing the answer, a 503 for a request that ran out of time
	// included, gets WriteTimeout beyond the request's own bound. The
	// deadline must not outlive this answer: the connection may carry a
	// WebSocket upgrade or an SSE stream next. Flush under it, then lift it.
	_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.APIRequestTimeout + s.cfg.WriteTimeout))
	defer func() {
		_ = rc.Flush()
		_ = rc.SetWriteDeadline(time.Time{})
	}()
	body, err := h(w, r.WithContext(ctx))
	if err != nil {
		return s.apiFail(w, r, err)
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return http.StatusOK
}

// refuseBody makes the answer to a request whose body will not be read
// close the connection: the answer goes out at once instead of after
// net/http drains up to 256 KiB of the body (before answering on a
// keep-alive connection, and after answering otherwise), so a client that
// trickles a body holds no socket for it.
func refuseBody(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 {
		dropBody(w)
	}
}

// dropBody closes the connection after the answer without reading what is
// left of the request body.
func dropBody(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
}

// apiAuth checks the request's API key. With no key configured the API is
// open in dev mode and closed otherwise.
func (s *Server) apiAuth(r *http.Request) error {
	if s.cfg.APIKeys.Empty() {
		if s.devMode() {
			return nil
		}
		s.authFailed(apiAuthReason)
		return protocol.NewError(protocol.CodeUnauthorized, "the HTTP API has no key configured")
	}
	h := r.Header.Get("Authorization")
	if !hasBearer(h) || !s.cfg.APIKeys.Check(h) {
		s.authFailed(apiAuthReason)
		return protocol.NewError(protocol.CodeUnauthorized, "missing or wrong API key")
	}
	return nil
}

// hasBearer reports whether an Authorization header value is of the Bearer
// scheme (an API key is never taken from a bare header, a cookie or the URL).
func hasBearer(h string) bool {
	const scheme = "bearer "
	h = strings.TrimSpace(h)
	return len(h) > len(scheme) && strings.EqualFold(h[:len(scheme)], scheme)
}

// apiFail writes the error body for err and returns its status: a
// *protocol.Error's code decides the status, a body over MaxBodyBytes is 413
// too_large, a body slower than APIBodyTimeout 408 bad_request, a request
// over APIRequestTimeout 503 unavailable, anything else is 500 internal
// (and logged).
func (s *Server) apiFail(w http.ResponseWriter, r *http.Request, err error) int {
	var pe *protocol.Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &pe):
	case errors.As(err, &mbe):
		pe = protocol.Errorf(protocol.CodeTooLarge, "request body over %d bytes", mbe.Limit)
	case errors.Is(err, errBodyTimeout):
		return s.apiError(w, http.StatusRequestTimeout, protocol.CodeBadRequest,
			"request body not received within "+s.cfg.APIBodyTimeout.String())
	case errors.Is(err, context.DeadlineExceeded):
		pe = protocol.NewError(protocol.CodeUnavailable, "request not served within "+s.cfg.APIRequestTimeout.String())
	default:
		s.cfg.Logger.Error("http api", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any(logKeyErr, err))
		pe = protocol.NewError(protocol.CodeInternal, "internal error")
	}
	return s.apiError(w, pe.Code.HTTPStatus(), pe.Code, pe.Msg)
}

// apiError writes an error body with the given status and counts it.
func (s *Server) apiError(w http.ResponseWriter, status int, code protocol.Code, msg string) int {
	if status == 0 {
		status = code.HTTPStatus()
	}
	s.errorCode(code)
	w.Header().Set("Cache-Control", "no-store")
	writeAPIError(w, status, code, msg)
	return status
}

// apiOtherMethod answers the methods a path does not serve: a CORS preflight
// for OPTIONS, 405 for the rest.
func (s *Server) apiOtherMethod(path string, allowed []string) http.HandlerFunc {
	allow := strings.Join(append(slices.Clone(allowed), http.MethodOptions), ", ")
	return func(w http.ResponseWriter, r *http.Request) {
		status := http.StatusNoContent
		switch {
		case r.Method != http.MethodOptions:
			refuseBody(w, r)
			w.Header().Set("Allow", allow)
			status = s.apiError(w, http.StatusMethodNotAllowed, protocol.CodeBadRequest,
				"method "+r.Method+" not allowed; allowed: "+allow)
		case !s.cors(w, r):
			refuseBody(w, r)
			status = s.apiFail(w, r, protocol.NewError(protocol.CodeForbidden, "origin not allowed"))
		default:
			h := w.Header()
			h.Set("Allow", allow)
			if r.Header.Get("Origin") != "" {
				h.Set("Access-Control-Allow-Methods", allow)
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept")
				h.Set("Access-Control-Max-Age", "600")
			}
			w.WriteHeader(status)
		}
		s.cfg.Metrics.APIRequest(r.Method+" "+path, status)
	}
}

// apiRoomName returns the {room} of the request's path, or invalid_room.
func apiRoomName(r *http.Request) (string, error) {
	name := r.PathValue("room")
	if !protocol.ValidRoomName(name) {
		return "", protocol.Errorf(protocol.CodeInvalidRoom, "invalid room name %q", name)
	}
	return name, nil
}

func roomNotFound(name string) error {
	return protocol.Errorf(protocol.CodeNotFound, "no room %q", name)
}

// errBodyTimeout: the request body did not arrive within APIBodyTimeout.
var errBodyTimeout = errors.New("server: request body timed out")

// readBody reads the request body, at most MaxBodyBytes of it within
// APIBodyTimeout, as one msgpack value: taken as is when the Content-Type is
// application/msgpack (or x-msgpack, vnd.msgpack), converted from JSON
// otherwise. A body cut short leaves the connection closed after the answer.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (protocol.Raw, error) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(s.cfg.APIBodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.cfg.MaxBodyBytes)))
	if err != nil {
		dropBody(w) // the rest of the body may still be on the wire
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return nil, err
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil, errBodyTimeout
		}
		return nil, protocol.Errorf(protocol.CodeBadRequest, "reading the body: %v", err)
	}
	// Lifted at once: the server reads on in the background for the
	// client's next request or hang-up.
	_ = rc.SetReadDeadline(time.Time{})
	if isMsgpack(r.Header.Get("Content-Type")) {
		if len(body) == 0 {
			return nil, protocol.NewError(protocol.CodeBadRequest, "empty body")
		}
		if err := protocol.ValidatePayload(body); err != nil {
			return nil, err
		}
		return body, nil
	}
	return protocol.FromJSON(body)
}

func isMsgpack(contentType string) bool {
	if contentType == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch mt {
	case "application/msgpack", "application/x-msgpack", "application/vnd.msgpack":
		return true
	}
	return false
}

// seqJSON is {"seq": n}.
func seqJSON(seq uint64) []byte {
	b := append(make([]byte, 0, 32), `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, '}')
}
