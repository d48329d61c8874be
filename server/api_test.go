package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/server/auth"
)

// apiReq is one HTTP API request of a test.
type apiReq struct {
	method, path string
	body         any    // string or []byte sent as is; nil for none
	ctype        string // Content-Type; "" for none
	key          string // API key sent as Bearer; "" for none
	hdr          map[string]string
}

// apiResp is an answer, its JSON body decoded (numbers as json.Number).
type apiResp struct {
	status int
	hdr    http.Header
	raw    []byte
	body   map[string]any
}

func (ts *testServer) api(t *testing.T, q apiReq) apiResp {
	t.Helper()
	var body io.Reader
	switch b := q.body.(type) {
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(testCtx(t), q.method, ts.URL+q.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if q.ctype != "" {
		req.Header.Set("Content-Type", q.ctype)
	}
	if q.key != "" {
		req.Header.Set("Authorization", "Bearer "+q.key)
	}
	for k, v := range q.hdr {
		req.Header.Set(k, v)
	}
	resp, err := ts.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := apiResp{status: resp.StatusCode, hdr: resp.Header, raw: raw}
	if len(bytes.TrimSpace(raw)) > 0 {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&out.body); err != nil {
			t.Fatalf("%s %s: %d, body %q is not a JSON object: %v", q.method, q.path, resp.StatusCode, raw, err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %s: Content-Type %q", q.method, q.path, ct)
		}
	}
	return out
}

// ok calls the API and fails unless it answers 200.
func (ts *testServer) ok(t *testing.T, q apiReq) map[string]any {
	t.Helper()
	r := ts.api(t, q)
	if r.status != http.StatusOK {
		t.Fatalf("%s %s: %d %s", q.method, q.path, r.status, r.raw)
	}
	return r.body
}

// wantAPIError checks an error answer's status and body.
func wantAPIError(t *testing.T, r apiResp, status int, code protocol.Code) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d (%s), want %d", r.status, r.raw, status)
	}
	e, ok := r.body["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object in %s", r.raw)
	}
	if e["code"] != json.Number(fmt.Sprint(int(code))) || e["name"] != code.String() {
		t.Fatalf("error %v, want code %d (%s)", e, code, code)
	}
	if msg, _ := e["msg"].(string); msg == "" {
		t.Fatalf("error without msg: %s", r.raw)
	}
}

// jsonText re-encodes a decoded JSON value, for comparing with a literal.
func jsonText(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func apiSeq(n uint64) json.Number { return json.Number(fmt.Sprint(n)) }

// apiMetrics records the API's measurements.
type apiMetrics struct {
	noopMetrics
	mu       sync.Mutex
	requests map[string]int // "route status" → count
	errors   map[protocol.Code]int
	auth     map[string]int
}

func newAPIMetrics() *apiMetrics {
	return &apiMetrics{requests: map[string]int{}, errors: map[protocol.Code]int{}, auth: map[string]int{}}
}

func (m *apiMetrics) APIRequest(route string, status int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[fmt.Sprintf("%s %d", route, status)]++
}

func (m *apiMetrics) ErrorSent(code protocol.Code) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.errors[code]++
}

func (m *apiMetrics) AuthFailure(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.auth[reason]++
}

func (m *apiMetrics) count(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.requests[key]
}

func (m *apiMetrics) errorCount(code protocol.Code) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.errors[code]
}

func TestAPIPublishReachesMember(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.connect(t)
	join(t, c, 1, "chat:a", nil)

	body := ts.ok(t, apiReq{method: "POST", path: "/v1/rooms/chat:a/messages", body: `{"data":{"text":"hi","n":[1,2.5]}}`, ctype: "application/json"})
	seq := body["seq"]
	if seq != json.Number("1") {
		t.Fatalf("publish answered %v", body)
	}
	m := expect(t, c, protocol.TypeMsg, protocol.TypePres)
	if apiSeq(m.S) != seq || m.R != "chat:a" || m.U != "" || m.C != "" {
		t.Fatalf("member got %+v, API answered seq %v", m, seq)
	}
	if got := fmt.Sprint(value(t, m.D)); got != "map[n:[1 2.5] text:hi]" {
		t.Fatalf("data %s", got)
	}

	// An idempotency key answers the original seq and delivers nothing more.
	first := ts.ok(t, apiReq{method: "POST", path: "/v1/rooms/chat:a/messages", body: `{"data":"once","key":"k-1"}`})
	m = expect(t, c, protocol.TypeMsg)
	if apiSeq(m.S) != first["seq"] || value(t, m.D) != "once" {
		t.Fatalf("member got seq %d %v, API answered %v", m.S, value(t, m.D), first)
	}
	again := ts.ok(t, apiReq{method: "POST", path: "/v1/rooms/chat:a/messages", body: `{"data":"twice","key":"k-1"}`})
	if again["seq"] != first["seq"] {
		t.Fatalf("repeated key answered %v, first %v", again, first)
	}

	// Ephemeral: seq 0, delivered as eph.
	eph := ts.ok(t, apiReq{method: "POST", path: "/v1/rooms/chat:a/messages", body: `{"data":{"x":1},"ephemeral":true}`})
	if eph["seq"] != json.Number("0") {
		t.Fatalf("ephemeral answered %v", eph)
	}
	e := expect(t, c, protocol.TypeEph)
	if fmt.Sprint(value(t, e.D)) != "map[x:1]" || e.U != "" || e.C != "" {
		t.Fatalf("eph %+v", e)
	}

	// The next durable message is the one after the key's: the repeat was
	// not delivered.
	next := ts.ok(t, apiReq{method: "POST", path: "/v1/rooms/chat:a/messages", body: `{"data":null}`})
	m = expect(t, c, protocol.TypeMsg)
	if apiSeq(m.S) != next["seq"] || next["seq"] != json.Number("3") || !m.D.IsNil() {
		t.Fatalf("member got seq %d, API answered %v", m.S, next)
	}
}

func TestAPIPublishMsgpack(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.connect(t)
	join(t, c, 1, "chat:a", nil)
	payload := map[string]any{"data": map[string]any{"bin": []byte{0, 1, 2, 255}, "big": uint64(1) << 60}, "key": "k-mp", "extra": []int{1}}
	b, err := msgpack.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	body := ts.ok(t, apiReq{method: "POST", path: "/v1/rooms/chat:a/messages", body: b, ctype: "application/msgpack"})
	m := expect(t, c, protocol.TypeMsg, protocol.TypePres)
	if apiSeq(m.S) != body["seq"] {
		t.Fatalf("member got seq %d, API answered %v", m.S, body)
	}
	var got struct {
		Bin []byte `msgpack:"bin"`
		Big uint64 `msgpack:"big"`
	}
	if err := msgpack.Unmarshal(m.D, &got); err != nil || !bytes.Equal(got.Bin, []byte{0, 1, 2, 255}) || got.Big != 1<<60 {
		t.Fatalf("data %+v (%v)", got, err)
	}
	// The same message read back as JSON: bin as base64, 2^60 as a string.
	hist := ts.ok(t, apiReq{method: "GET", path: "/v1/rooms/chat:a/history"})
	if got := jsonText(t, hist["events"].([]any)[0].(map[string]any)["data"]); got != `{"big":"1152921504606846976","bin":"AAEC/w=="}` {
		t.Fatalf("history data %s", got)
	}
	again := ts.ok(t, apiReq{method: "POST", path: "/v1/rooms/chat:a/messages", body: b, ctype: "application/x-msgpack"})
	if again["seq"] != body["seq"] {
		t.Fatalf("repeated key answered %v, first %v", again, body)
	}
}

func TestAPIReads(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.connect(t)
	join(t, c, 1, "chat:a", client.M{"p": map[string]any{"name": "ann"}})
	conn := c.Welcome.C
	ts.ok(t, apiReq{method: "POST", path: "/v1/rooms/chat:a/messages", body: `{"data":"one"}`})
	ts.ok(t, apiReq{method: "PUT", path: "/v1/rooms/chat:a/state/topic", body: `{"title":"news"}`})
	ts.ok(t, apiReq{method: "POST", path: "/v1/rooms/chat:a/messages", body: `{"data":"two"}`})
	ts.ok(t, apiReq{method: "POST", path: "/v1/rooms/chat:b/messages", body: `{"data":"other"}`})
	ts.ok(t, apiReq{method: "POST", path: "/v1/rooms/game:1/messages", body: `{"data":"x"}`})

	info := ts.ok(t, apiReq{method: "GET", path: "/v1/rooms/chat:a"})
	epoch, _ := info["epoch"].(string)
	if epoch == "" || info["room"] != "chat:a" || info["seq"] != json.Number("3") || info["owner"] != "test-node" ||
		info["members"] != json.Number("1") || info["observers"] != json.Number("0") || len(info) != 6 {
		t.Fatalf("room %v", info)
	}

	pres := ts.ok(t, apiReq{method: "GET", path: "/v1/rooms/chat:a/presence"})
	if got, want := jsonText(t, pres), `{"members":[{"conn":"`+conn+`","data":{"name":"ann"}}],"room":"chat:a"}`; got != want {
		t.Fatalf("presence %s, want %s", got, want)
	}

	hist := ts.ok(t, apiReq{method: "GET", path: "/v1/rooms/chat:a/history"})
	events, _ := hist["events"].([]any)
	if hist["room"] != "chat:a" || hist["epoch"] != epoch || len(events) != 3 {
		t.Fatalf("history %v", hist)
	}
	for i, want := range []string{
		`{"conn":"","data":"one","room":"chat:a","seq":1,"ts":%s,"type":"message","user":""}`,
		`{"data":{"title":"news"},"deleted":false,"key":"topic","room":"chat:a","seq":2,"ts":%s,"type":"state"}`,
		`{"conn":"","data":"two","room":"chat:a","seq":3,"ts":%s,"type":"message","user":""}`,
	} {
		ev := events[i].(map[string]any)
		ts, ok := ev["ts"].(json.Number)
		if !ok {
			t.Fatalf("event %d has no ts: %v", i, ev)
		}
		if got := jsonText(t, ev); got != fmt.Sprintf(want, ts) {
			t.Fatalf("event %d: %s", i, got)
		}
	}
	part := ts.ok(t, apiReq{method: "GET", path: "/v1/rooms/chat:a/history?since=1&limit=1"})
	if events := part["events"].([]any); len(events) != 1 || events[0].(map[string]any)["seq"] != json.Number("2") {
		t.Fatalf("history since=1 limit=1: %v", part)
	}
	if events := ts.ok(t, apiReq{method: "GET", path: "/v1/rooms/chat:a/history?since=3"})["events"].([]any); len(events) != 0 {
		t.Fatalf("history since=3: %v", events)
	}

	st := ts.ok(t, apiReq{method: "GET", path: "/v1/rooms/chat:a/state"})
	if got := jsonText(t, st); got != `{"room":"chat:a","seq":3,"state":{"topic":{"title":"news"}}}` {
		t.Fatalf("state %s", got)
	}

	rooms := ts.ok(t, apiReq{method: "GET", path: "/v1/rooms?prefix=chat:"})
	list, _ := rooms["rooms"].([]any)
	if len(list) != 2 {
		t.Fatalf("rooms %v", rooms)
	}
	if a := list[0].(map[string]any); a["room"] != "chat:a" || a["epoch"] != epoch || a["seq"] != json.Number("3") || a["owner"] != "test-node" ||
		a["members"] != json.Number("1") || a["observers"] != json.Number("0") {
		t.Fatalf("rooms[0] %v", a)
	}
	if b := list[1].(map[string]any); b["room"] != "chat:b" || b["members"] != json.Number("0") {
		t.Fatalf("rooms[1] %v", b)
	}
	if all := ts.ok(t, apiReq{method: "GET", path: "/v1/rooms"})["rooms"].([]any); len(all) != 3 {
		t.Fatalf("all rooms %v", all)
	}
	if none := ts.ok(t, apiReq{method: "GET", path: "/v1/rooms?prefix=nope"})["rooms"].([]any); len(none) != 0 {
		t.Fatalf("no rooms %v", none)
	}

	cl := ts.ok(t, apiReq{method: "GET", path: "/v1/cluster"})
	if got := jsonText(t, cl); got != `{"formation":"formed","members":[{"groups_led":256,"name":"test-node","partitions":256,"rooms":3,"self":true,"settled":true,"state":"alive"}],"node":"test-node"}` {
		t.Fatalf("cluster %s", got)
	}
}

func TestAPIState(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.connect(t)
	join(t, c, 1, "board:1", nil)

	set := ts.ok(t, apiReq{method: "PUT", path: "/v1/rooms/board:1/state/shape:1", body: `{"x":1.5,"y":-2}`})
	f := expect(t, c, protocol.TypeState, protocol.TypePres)
	if apiSeq(f.S) != set["seq"] || f.K != "shape:1" || fmt.Sprint(value(t, f.D)) != "map[x:1.5 y:-2]" {
		t.Fatalf("member got %+v %v, API answered %v", f, value(t, f.D), set)
	}
	b, _ := msgpack.Marshal([]byte("raw"))
	ts.ok(t, apiReq{method: "PUT", path: "/v1/rooms/board:1/state/blob", body: b, ctype: "application/msgpack"})
	// A key with an escaped slash.
	ts.ok(t, apiReq{method: "PUT", path: "/v1/rooms/board:1/state/a%2Fb", body: `true`})
	st := ts.ok(t, apiReq{method: "GET", path: "/v1/rooms/board:1/state"})
	if got := jsonText(t, st); got != `{"room":"board:1","seq":3,"state":{"a/b":true,"blob":"cmF3","shape:1":{"x":1.5,"y":-2}}}` {
		t.Fatalf("state %s", got)
	}

	del := ts.ok(t, apiReq{method: "DELETE", path: "/v1/rooms/board:1/state/shape:1"})
	if del["seq"] != json.Number("4") {
		t.Fatalf("delete answered %v", del)
	}
	f = expect(t, c, protocol.TypeState)
	for f.S != 4 {
		f = expect(t, c, protocol.TypeState)
	}
	if f.K != "shape:1" || !f.D.IsNil() {
		t.Fatalf("delete reached the member as %+v", f)
	}
	// PUT null deletes too.
	ts.ok(t, apiReq{method: "PUT", path: "/v1/rooms/board:1/state/blob", body: `null`})
	st = ts.ok(t, apiReq{method: "GET", path: "/v1/rooms/board:1/state"})
	if got := jsonText(t, st); got != `{"room":"board:1","seq":5,"state":{"a/b":true}}` {
		t.Fatalf("state %s", got)
	}
}

const (
	apiKey1 = "k1-0123456789"
	apiKey2 = "k2-abcdefghij"
)

// newAPIKeyServer runs a server that is not in dev mode (an HMAC secret is
// configured) with two API keys.
func newAPIKeyServer(t *testing.T, m Metrics) *testServer {
	v, err := auth.NewVerifier(auth.Config{HMACSecrets: [][]byte{testSecret}})
	if err != nil {
		t.Fatal(err)
	}
	return newTestServer(t, func(c *Config, _ *room.Config) {
		c.Auth = v
		c.APIKeys = auth.NewAPIKeys([]string{apiKey1, apiKey2})
		if m != nil {
			c.Metrics = m
		}
	})
}

func TestAPIAuth(t *testing.T) {
	m := newAPIMetrics()
	ts := newAPIKeyServer(t, m)
	get := apiReq{method: "GET", path: "/v1/cluster"}

	r := ts.api(t, get)
	wantAPIError(t, r, http.StatusUnauthorized, protocol.CodeUnauthorized)
	if !strings.HasPrefix(r.hdr.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("WWW-Authenticate %q", r.hdr.Get("WWW-Authenticate"))
	}
	wrong := get
	wrong.key = "k3-nope"
	wantAPIError(t, ts.api(t, wrong), http.StatusUnauthorized, protocol.CodeUnauthorized)
	bare := get
	bare.hdr = map[string]string{"Authorization": apiKey1}
	wantAPIError(t, ts.api(t, bare), http.StatusUnauthorized, protocol.CodeUnauthorized)
	basic := get
	basic.hdr = map[string]string{"Authorization": "Basic " + apiKey1}
	wantAPIError(t, ts.api(t, basic), http.StatusUnauthorized, protocol.CodeUnauthorized)
	cookie := get
	cookie.hdr = map[string]string{"Cookie": auth.CookieName + "=" + apiKey1}
	wantAPIError(t, ts.api(t, cookie), http.StatusUnauthorized, protocol.CodeUnauthorized)
	// A write is refused before its body is looked at.
	pub := apiReq{method: "POST", path: "/v1/rooms/chat:a/messages", body: `{"data":1}`, key: "nope"}
	wantAPIError(t, ts.api(t, pub), http.StatusUnauthorized, protocol.CodeUnauthorized)
	if r := ts.api(t, apiReq{method: "GET", path: "/v1/rooms/chat:a", key: apiKey1}); r.status != http.StatusNotFound {
		t.Fatalf("an unauthorized publish created the room: %d %s", r.status, r.raw)
	}

	for _, key := range []string{apiKey1, apiKey2} {
		q := get
		q.key = key
		ts.ok(t, q)
		pub.key = key
		ts.ok(t, pub)
	}
	lower := get
	lower.hdr = map[string]string{"Authorization": "bearer " + apiKey2}
	ts.ok(t, lower)

	if n := m.count("GET /v1/cluster 401"); n != 5 {
		t.Fatalf("counted %d refused requests: %v", n, m.requests)
	}
	if n := m.count("GET /v1/cluster 200"); n != 3 {
		t.Fatalf("counted %d good requests: %v", n, m.requests)
	}
	if m.errorCount(protocol.CodeUnauthorized) != 6 || m.auth[apiAuthReason] != 6 {
		t.Fatalf("errors %v, auth failures %v", m.errors, m.auth)
	}
}

func TestAPIAuthWithoutKeys(t *testing.T) {
	// Not dev mode and no API key: closed.
	v, err := auth.NewVerifier(auth.Config{HMACSecrets: [][]byte{testSecret}})
	if err != nil {
		t.Fatal(err)
	}
	closed := newTestServer(t, func(c *Config, _ *room.Config) { c.Auth = v })
	wantAPIError(t, closed.api(t, apiReq{method: "GET", path: "/v1/rooms", key: "anything"}), http.StatusUnauthorized, protocol.CodeUnauthorized)

	// Dev mode and no API key: open.
	open := newTestServer(t, nil)
	open.ok(t, apiReq{method: "GET", path: "/v1/rooms"})
	open.ok(t, apiReq{method: "GET", path: "/v1/rooms", key: "anything"})
}

func TestAPIErrors(t *testing.T) {
	m := newAPIMetrics()
	ts := newTestServer(t, func(c *Config, rc *room.Config) {
		c.MaxBodyBytes = 1024
		c.Metrics = m
		rc.Namespaces = map[string]room.Namespace{"small": {MaxMessageBytes: 16, StateMaxKeys: 1}}
	})
	ts.ok(t, apiReq{method: "POST", path: "/v1/rooms/small:1/messages", body: `{"data":1}`})
	ts.ok(t, apiReq{method: "PUT", path: "/v1/rooms/small:1/state/a", body: `1`})
	big := `{"data":"` + strings.Repeat("x", 1100) + `"}`
	tests := []struct {
		name   string
		q      apiReq
		status int
		code   protocol.Code
	}{
		{"room unknown", apiReq{method: "GET", path: "/v1/rooms/chat:none"}, 404, protocol.CodeNotFound},
		{"presence unknown", apiReq{method: "GET", path: "/v1/rooms/chat:none/presence"}, 404, protocol.CodeNotFound},
		{"history unknown", apiReq{method: "GET", path: "/v1/rooms/chat:none/history"}, 404, protocol.CodeNotFound},
		{"state unknown", apiReq{method: "GET", path: "/v1/rooms/chat:none/state"}, 404, protocol.CodeNotFound},
		{"room bad name", apiReq{method: "GET", path: "/v1/rooms/bad%20name"}, 400, protocol.CodeInvalidRoom},
		{"room name too long", apiReq{method: "GET", path: "/v1/rooms/" + strings.Repeat("a", 129)}, 400, protocol.CodeInvalidRoom},
		{"publish bad name", apiReq{method: "POST", path: "/v1/rooms/a%2Fb/messages", body: `{"data":1}`}, 400, protocol.CodeInvalidRoom},
		{"presence bad name", apiReq{method: "GET", path: "/v1/rooms/a!/presence"}, 400, protocol.CodeInvalidRoom},
		{"history bad name", apiReq{method: "GET", path: "/v1/rooms/a!/history"}, 400, protocol.CodeInvalidRoom},
		{"state bad name", apiReq{method: "GET", path: "/v1/rooms/a!/state"}, 400, protocol.CodeInvalidRoom},
		{"set bad name", apiReq{method: "PUT", path: "/v1/rooms/a!/state/k", body: `1`}, 400, protocol.CodeInvalidRoom},
		{"delete bad name", apiReq{method: "DELETE", path: "/v1/rooms/a!/state/k"}, 400, protocol.CodeInvalidRoom},
		{"kick bad name", apiReq{method: "DELETE", path: "/v1/rooms/a!/members/u"}, 400, protocol.CodeInvalidRoom},
		{"body too large", apiReq{method: "POST", path: "/v1/rooms/chat:a/messages", body: big}, 413, protocol.CodeTooLarge},
		{"state body too large", apiReq{method: "PUT", path: "/v1/rooms/chat:a/state/k", body: big}, 413, protocol.CodeTooLarge},
		{"malformed JSON", apiReq{method: "POST", path: "/v1/rooms/chat:a/messages", body: `{"data":`}, 400, protocol.CodeBadRequest},
		{"malformed state JSON", apiReq{method: "PUT", path: "/v1/rooms/chat:a/state/k", body: `{x}`}, 400, protocol.CodeBadRequest},
		{"empty body", apiReq{method: "POST", path: "/v1/rooms/chat:a/messages"}, 400, protocol.CodeBadRequest},
		{"body not an object", apiReq{method: "POST", path: "/v1/rooms/chat:a/messages", body: `[1]`}, 400, protocol.CodeBadRequest},
		{"no data", apiReq{method: "POST", path: "/v1/rooms/chat:a/messages", body: `{"key":"k"}`}, 400, protocol.CodeBadRequest},
		{"ephemeral not a bool", apiReq{method: "POST", path: "/v1/rooms/chat:a/messages", body: `{"data":1,"ephemeral":"yes"}`}, 400, protocol.CodeBadRequest},
		{"key not a string", apiReq{method: "POST", path: "/v1/rooms/chat:a/messages", body: `{"data":1,"key":5}`}, 400, protocol.CodeBadRequest},
		{"bad msgpack", apiReq{method: "POST", path: "/v1/rooms/chat:a/messages", body: []byte{0x81, 0xa4}, ctype: "application/msgpack"}, 400, protocol.CodeBadRequest},
		{"msgpack ext", apiReq{method: "PUT", path: "/v1/rooms/chat:a/state/k", body: []byte{0xd4, 1, 0}, ctype: "application/msgpack"}, 400, protocol.CodeBadRequest},
		{"bad since", apiReq{method: "GET", path: "/v1/rooms/small:1/history?since=x"}, 400, protocol.CodeBadRequest},
		{"bad limit", apiReq{method: "GET", path: "/v1/rooms/small:1/history?limit=0"}, 400, protocol.CodeBadRequest},
		{"payload over the room's limit", apiReq{method: "POST", path: "/v1/rooms/small:1/messages", body: `{"data":"` + strings.Repeat("y", 20) + `"}`}, 413, protocol.CodeTooLarge},
		{"key over the limit", apiReq{method: "POST", path: "/v1/rooms/chat:a/messages", body: `{"data":1,"key":"` + strings.Repeat("k", 65) + `"}`}, 413, protocol.CodeTooLarge},
		{"state full", apiReq{method: "PUT", path: "/v1/rooms/small:1/state/b", body: `2`}, 429, protocol.CodeLimit},
		{"wrong method", apiReq{method: "GET", path: "/v1/rooms/chat:a/messages"}, 405, protocol.CodeBadRequest},
		{"wrong method on a room", apiReq{method: "POST", path: "/v1/rooms/chat:a", body: `{}`}, 405, protocol.CodeBadRequest},
		{"wrong method on rooms", apiReq{method: "DELETE", path: "/v1/rooms"}, 405, protocol.CodeBadRequest},
		{"wrong method on members", apiReq{method: "PATCH", path: "/v1/rooms/chat:a/members/u"}, 405, protocol.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantAPIError(t, ts.api(t, tt.q), tt.status, tt.code)
		})
	}
	r := ts.api(t, apiReq{method: "GET", path: "/v1/rooms/chat:a/messages"})
	if r.hdr.Get("Allow") != "POST, OPTIONS" {
		t.Fatalf("Allow %q", r.hdr.Get("Allow"))
	}
	r = ts.api(t, apiReq{method: "PUT", path: "/v1/rooms/chat:a/state"})
	if r.hdr.Get("Allow") != "GET, HEAD, OPTIONS" {
		t.Fatalf("Allow %q", r.hdr.Get("Allow"))
	}
	if n := m.count("GET /v1/rooms/{room} 404"); n != 1 {
		t.Fatalf("counted %d: %v", n, m.requests)
	}
	if n := m.count("POST /v1/rooms/{room}/messages 413"); n != 3 {
		t.Fatalf("counted %d: %v", n, m.requests)
	}
	if n := m.count("GET /v1/rooms/{room}/messages 405"); n != 2 {
		t.Fatalf("counted %d: %v", n, m.requests)
	}
	if n := m.errorCount(protocol.CodeNotFound); n != 4 {
		t.Fatalf("%d not_found errors counted", n)
	}
	// Nothing above created a room.
	rooms := ts.ok(t, apiReq{method: "GET", path: "/v1/rooms"})["rooms"].([]any)
	if len(rooms) != 1 || rooms[0].(map[string]any)["room"] != "small:1" {
		t.Fatalf("rooms %v", rooms)
	}
}

func TestAPICORS(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *room.Config) {
		c.AllowedOrigins = []string{"https://app.example.com"}
	})
	pre := ts.api(t, apiReq{method: "OPTIONS", path: "/v1/rooms/chat:a/messages", hdr: map[string]string{
		"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type",
	}})
	if pre.status != http.StatusNoContent || pre.hdr.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		pre.hdr.Get("Access-Control-Allow-Methods") != "POST, OPTIONS" ||
		!strings.Contains(pre.hdr.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight %d %v", pre.status, pre.hdr)
	}
	get := ts.api(t, apiReq{method: "GET", path: "/v1/rooms", hdr: map[string]string{"Origin": "https://app.example.com"}})
	if get.status != http.StatusOK || get.hdr.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("GET %d %v", get.status, get.hdr)
	}
	evil := map[string]string{"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"}
	r := ts.api(t, apiReq{method: "OPTIONS", path: "/v1/rooms/chat:a/messages", hdr: evil})
	wantAPIError(t, r, http.StatusForbidden, protocol.CodeForbidden)
	if r.hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("refused preflight allowed %q", r.hdr.Get("Access-Control-Allow-Origin"))
	}
	wantAPIError(t, ts.api(t, apiReq{method: "POST", path: "/v1/rooms/chat:a/messages", body: `{"data":1}`, hdr: evil}), http.StatusForbidden, protocol.CodeForbidden)
	wantAPIError(t, ts.api(t, apiReq{method: "GET", path: "/v1/rooms", hdr: evil}), http.StatusForbidden, protocol.CodeForbidden)
}

func TestAPIKick(t *testing.T) {
	ts := newAPIKeyServer(t, nil)
	tokAnn := mint(t, testSecret, "ann", time.Hour, "chat:*=join,pub")
	tokBob := mint(t, testSecret, "bob", time.Hour, "chat:*=join,pub")
	dial := func(tok string) *client.Conn {
		c := ts.dial(t)
		if err := c.Hello(testCtx(t), tok, nil); err != nil {
			t.Fatal(err)
		}
		return c
	}
	ann1, ann2, bob := dial(tokAnn), dial(tokAnn), dial(tokBob)
	join(t, ann1, 1, "chat:a", nil)
	join(t, ann2, 1, "chat:a", nil)
	join(t, bob, 1, "chat:a", nil)
	join(t, ann1, 2, "chat:b", nil)
	checkFor(t, 5*time.Second, func() error {
		if n := ts.ok(t, apiReq{method: "GET", path: "/v1/rooms/chat:a", key: apiKey1})["members"]; n != json.Number("3") {
			return fmt.Errorf("%v members", n)
		}
		return nil
	})

	r := ts.ok(t, apiReq{method: "DELETE", path: "/v1/rooms/chat:a/members/ann", key: apiKey2})
	if r["kicked"] != json.Number("2") {
		t.Fatalf("kick answered %v", r)
	}
	for _, c := range []*client.Conn{ann1, ann2} {
		f := expect(t, c, protocol.TypeLeft, protocol.TypePres)
		if f.R != "chat:a" || f.Code != protocol.CodeKicked || f.Msg == "" {
			t.Fatalf("left %+v", f)
		}
	}
	// bob sees both leave; ann1 is still in chat:b.
	left := map[string]bool{}
	for len(left) < 2 {
		f := expect(t, bob, protocol.TypePres)
		ids, err := msgpackStrings(f.Leave)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			left[id] = true
		}
	}
	if !left[ann1.Welcome.C] || !left[ann2.Welcome.C] {
		t.Fatalf("bob saw %v leave", left)
	}
	pres := ts.ok(t, apiReq{method: "GET", path: "/v1/rooms/chat:a/presence", key: apiKey1})
	if got := jsonText(t, pres["members"]); got != `[{"conn":"`+bob.Welcome.C+`","data":null,"info":{"name":"bob"},"user":"bob"}]` {
		t.Fatalf("presence after kick %s", got)
	}
	if n := ts.ok(t, apiReq{method: "GET", path: "/v1/rooms/chat:b", key: apiKey1})["members"]; n != json.Number("1") {
		t.Fatalf("chat:b has %v members", n)
	}
	if r := ts.ok(t, apiReq{method: "DELETE", path: "/v1/rooms/chat:a/members/ann", key: apiKey1}); r["kicked"] != json.Number("0") {
		t.Fatalf("second kick answered %v", r)
	}
	if r := ts.ok(t, apiReq{method: "DELETE", path: "/v1/rooms/chat:none/members/ann", key: apiKey1}); r["kicked"] != json.Number("0") {
		t.Fatalf("kick in no room answered %v", r)
	}
}

func msgpackStrings(raw protocol.Raw) ([]string, error) {
	var s []string
	if raw.IsNil() {
		return nil, nil
	}
	err := msgpack.Unmarshal(raw, &s)
	return s, err
}

// TestRoomPublishRate: a room's own publish rate refuses what its members
// and the API offer beyond it, with err 5 on the socket and 429 on the API;
// readers get only what was accepted, and the refused publisher's
// connection goes on working.
func TestRoomPublishRate(t *testing.T) {
	ts := newTestServer(t, func(_ *Config, r *room.Config) {
		// A burst of 2 and a rate too slow to refill within the test.
		r.Namespaces = map[string]room.Namespace{"hot": {RoomPublishRate: 0.001, RoomPublishBurst: 2}}
	})
	reader, a, b := ts.connect(t), ts.connect(t), ts.connect(t)
	for _, c := range []*client.Conn{reader, a, b} {
		join(t, c, 1, "hot:x", nil)
	}
	pubOK := func(c *client.Conn, id uint64) {
		t.Helper()
		send(t, c, client.M{"t": "pub", "id": id, "r": "hot:x", "d": id})
		if f := expect(t, c, protocol.TypeOK, protocol.TypePres, protocol.TypeMsg); f.ID != id {
			t.Fatalf("ok for id %d, want %d", f.ID, id)
		}
	}
	pubOK(a, 2)
	pubOK(b, 3)
	send(t, a, client.M{"t": "pub", "id": 4, "r": "hot:x", "d": 4})
	if f := expect(t, a, protocol.TypeErr, protocol.TypePres, protocol.TypeMsg); f.ID != 4 || f.Code != protocol.CodeRateLimited {
		t.Fatalf("over the room's rate: %+v, want err 5 for id 4", f)
	}
	send(t, b, client.M{"t": "set", "id": 5, "r": "hot:x", "k": "k", "d": 1})
	if f := expect(t, b, protocol.TypeErr, protocol.TypePres, protocol.TypeMsg); f.ID != 5 || f.Code != protocol.CodeRateLimited {
		t.Fatalf("set over the room's rate: %+v, want err 5 for id 5", f)
	}
	wantAPIError(t, ts.api(t, apiReq{method: "POST", path: "/v1/rooms/hot:x/messages", body: `{"data":6}`}), http.StatusTooManyRequests, protocol.CodeRateLimited)

	// Another room is not touched, and the refused connection still works.
	join(t, a, 7, "other", nil)
	send(t, a, client.M{"t": "pub", "id": 8, "r": "other", "d": 8})
	if f := expect(t, a, protocol.TypeOK, protocol.TypePres, protocol.TypeMsg); f.ID != 8 {
		t.Fatalf("ok for id %d in another room, want 8", f.ID)
	}
	// The reader got the two accepted messages, and the room's history
	// holds those two only.
	for want := uint64(1); want <= 2; want++ {
		if f := expect(t, reader, protocol.TypeMsg, protocol.TypePres, protocol.TypeOK); f.S != want {
			t.Fatalf("reader got seq %d, want %d", f.S, want)
		}
	}
	hist := ts.ok(t, apiReq{method: "GET", path: "/v1/rooms/hot:x/history"})
	if evs, _ := hist["events"].([]any); len(evs) != 2 {
		t.Fatalf("history holds %d events, want the 2 accepted: %v", len(evs), hist)
	}
}
