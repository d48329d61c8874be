package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/roomd/roomd/protocol"
)

// HTTPBackend posts each hook as a signed JSON body to a URL and reads the
// JSON answer. An answer other than 2xx, or a body that does not decode,
// is a failure; so is no answer within the call's context.
type HTTPBackend struct {
	secret  []byte
	client  *http.Client
	connect string
	url     func(room string) string
	now     func() time.Time
}

var _ Backend = (*HTTPBackend)(nil)

// maxAnswer bounds a backend's answer body.
const maxAnswer = 1 << 20

// NewHTTPBackend returns a Backend posting the connect hook to connectURL
// and a room's hooks to url(room), signed with secret. A nil client means
// a default one.
func NewHTTPBackend(secret []byte, client *http.Client, connectURL string, url func(room string) string) *HTTPBackend {
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		client = &http.Client{Transport: tr}
	}
	return &HTTPBackend{secret: secret, client: client, connect: connectURL, url: url, now: time.Now}
}

// Connect implements Backend.
func (b *HTTPBackend) Connect(ctx context.Context, req *ConnectRequest) (*ConnectResult, error) {
	req.Hook = Connect
	var res ConnectResult
	return &res, b.post(ctx, b.connect, Connect, req, &res)
}

// Join implements Backend.
func (b *HTTPBackend) Join(ctx context.Context, req *JoinRequest) (*JoinResult, error) {
	req.Hook = Join
	var res JoinResult
	return &res, b.post(ctx, b.url(req.Room), Join, req, &res)
}

// Publish implements Backend.
func (b *HTTPBackend) Publish(ctx context.Context, req *PublishRequest) (*PublishResult, error) {
	req.Hook = Publish
	var res PublishResult
	return &res, b.post(ctx, b.url(req.Room), Publish, req, &res)
}

// Published implements Backend.
func (b *HTTPBackend) Published(ctx context.Context, ev *PublishedEvent) error {
	ev.Hook = Published
	return b.post(ctx, b.url(ev.Room), Published, ev, nil)
}

// Occupied implements Backend.
func (b *HTTPBackend) Occupied(ctx context.Context, ev *RoomEvent) error {
	ev.Hook = Occupied
	return b.post(ctx, b.url(ev.Room), Occupied, ev, nil)
}

// Vacated implements Backend.
func (b *HTTPBackend) Vacated(ctx context.Context, ev *RoomEvent) error {
	ev.Hook = Vacated
	return b.post(ctx, b.url(ev.Room), Vacated, ev, nil)
}

// post sends body to url and decodes the answer into out (nil: any 2xx
// answer is an acknowledgement, its body ignored).
func (b *HTTPBackend) post(ctx context.Context, url string, hook Name, body, out any) error {
	if url == "" {
		return fmt.Errorf("%w: %s: no URL", ErrFailed, hook)
	}
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrFailed, hook, err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrFailed, hook, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set(HookHeader, string(hook))
	hr.Header.Set(SignatureHeader, Sign(b.secret, data, b.now()))
	resp, err := b.client.Do(hr)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrFailed, hook, err)
	}
	defer resp.Body.Close()
	ans, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	switch {
	case err != nil:
		return fmt.Errorf("%w: %s: reading the answer: %v", ErrFailed, hook, err)
	case resp.StatusCode/100 != 2:
		return fmt.Errorf("%w: %s: HTTP %d", ErrFailed, hook, resp.StatusCode)
	case len(ans) > maxAnswer:
		return fmt.Errorf("%w: %s: answer over %d bytes", ErrFailed, hook, maxAnswer)
	case out == nil:
		return nil
	}
	if err := json.Unmarshal(ans, out); err != nil {
		return fmt.Errorf("%w: %s: answer: %v", ErrFailed, hook, err)
	}
	return nil
}

// JSONData returns the JSON form of a msgpack payload, for a request.
func JSONData(p protocol.Raw) (json.RawMessage, error) {
	if p == nil {
		return nil, nil
	}
	return protocol.AppendJSON(nil, p)
}

// MsgpackData returns the msgpack form of a JSON value from an answer.
func MsgpackData(j json.RawMessage) (protocol.Raw, error) {
	return protocol.FromJSON(j)
}
