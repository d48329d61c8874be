package wsframe

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// A client handshake against gorilla's server: the frames the server sends
// right after its answer are in the returned reader, not lost in the
// handshake's; the server reads the client's masked frames; a refusal is
// ErrHandshake.
func TestClientHandshake(t *testing.T) {
	up := websocket.Upgrader{Subprotocols: []string{"test.v1"}}
	got := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("refuse") != "" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		_ = ws.WriteMessage(websocket.BinaryMessage, []byte("at once"))
		_, msg, _ := ws.ReadMessage()
		got <- msg
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	dial := func() net.Conn {
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		return conn
	}
	conn := dial()
	br, resp, err := ClientHandshake(conn, host, "/ws?x=1", "test.v1", http.Header{"X-Test": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Sec-WebSocket-Protocol") != "test.v1" {
		t.Fatalf("subprotocol %q", resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	var buf bytes.Buffer
	if op, err := (&Reader{}).ReadMessage(br, &buf, 0); err != nil || op != OpBinary || buf.String() != "at once" {
		t.Fatalf("first message: %d %q %v", op, buf.String(), err)
	}
	if _, err := conn.Write(AppendMasked(nil, OpBinary, []byte("from the client"), NewMaskKey())); err != nil {
		t.Fatal(err)
	}
	if msg := <-got; string(msg) != "from the client" {
		t.Fatalf("server got %q", msg)
	}

	conn = dial()
	if _, _, err := ClientHandshake(conn, host, "/ws?refuse=1", "test.v1", nil); !errors.Is(err, ErrHandshake) {
		t.Fatalf("refused: %v", err)
	}
	conn = dial()
	if _, _, err := ClientHandshake(conn, host, "/ws", "other.v1", nil); !errors.Is(err, ErrHandshake) {
		t.Fatalf("other subprotocol: %v", err)
	}
}
