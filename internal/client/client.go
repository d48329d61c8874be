// Package client is a small Go client of the roomd protocol, for the
// server's tests and for roomd bench. It speaks the wire format directly and
// hides nothing: frames go out as given and come back decoded.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/roomd/roomd/protocol"
)

// M is a frame to send, as a map.
type M = map[string]any

// Conn is one WebSocket connection to roomd. Send and Next may be used from
// different goroutines; each is for one goroutine at a time.
type Conn struct {
	ws      *websocket.Conn
	pending []protocol.Frame
	split   [][]byte
	wmu     sync.Mutex
	// Welcome is the server's welcome, once Hello succeeded.
	Welcome protocol.Frame
}

// DialOptions tunes Dial.
type DialOptions struct {
	// Subprotocols offered; nil offers protocol.Subprotocol (roomd.v1).
	Subprotocols []string
	Header       http.Header
	Timeout      time.Duration
	// NetDialContext, when set, makes the TCP connection (to tune sockets).
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Compression offers permessage-deflate; when the server accepts,
	// messages are compressed both ways (gorilla's client).
	Compression bool
	// TLS configures wss:// connections; nil uses the system's defaults.
	TLS *tls.Config
}

// Dial opens a connection to a roomd base URL (http://host:port or
// ws://host:port; /v1/ws is appended when the path is empty).
func Dial(ctx context.Context, url string, o *DialOptions) (*Conn, *http.Response, error) {
	if o == nil {
		o = &DialOptions{}
	}
	url = WSURL(url)
	d := websocket.Dialer{
		Subprotocols:      o.Subprotocols,
		HandshakeTimeout:  o.Timeout,
		ReadBufferSize:    4096,
		WriteBufferSize:   4096,
		NetDialContext:    o.NetDialContext,
		EnableCompression: o.Compression,
		TLSClientConfig:   o.TLS,
	}
	if d.Subprotocols == nil {
		d.Subprotocols = []string{protocol.Subprotocol}
	}
	if d.HandshakeTimeout == 0 {
		d.HandshakeTimeout = 10 * time.Second
	}
	ws, resp, err := d.DialContext(ctx, url, o.Header)
	if err != nil {
		return nil, resp, err
	}
	ws.SetReadLimit(64 << 20)
	return &Conn{ws: ws}, resp, nil
}

// WSURL turns a base URL into the WebSocket endpoint's URL.
func WSURL(url string) string {
	url = strings.Replace(url, "http://", "ws://", 1)
	url = strings.Replace(url, "https://", "wss://", 1)
	if i := strings.Index(url, "://"); i >= 0 && !strings.Contains(url[i+3:], "/") {
		url += "/v1/ws"
	}
	return url
}

// WS exposes the underlying connection (for tests that misbehave on purpose).
func (c *Conn) WS() *websocket.Conn { return c.ws }

// Close closes the connection without a close handshake.
func (c *Conn) Close() error { return c.ws.NetConn().Close() }

// Send encodes frames and sends them as one WebSocket message.
func (c *Conn) Send(frames ...any) error {
	var buf []byte
	for _, f := range frames {
		b, err := msgpack.Marshal(f)
		if err != nil {
			return err
		}
		buf = append(buf, b...)
	}
	return c.SendRaw(websocket.BinaryMessage, buf)
}

// SendRaw sends one message of the given WebSocket type as is.
func (c *Conn) SendRaw(messageType int, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(messageType, b)
}

// CloseError is returned by Next when the server closed the connection.
type CloseError struct {
	Code int // WebSocket close code, 4000+protocol code for a bye
	Text string
}

func (e *CloseError) Error() string { return fmt.Sprintf("closed %d %s", e.Code, e.Text) }

// Next returns the next frame, reading a message when none is pending. It
// fails when ctx ends (the connection is then unusable) or the connection
// closes (*CloseError for a close frame).
func (c *Conn) Next(ctx context.Context) (*protocol.Frame, error) {
	for len(c.pending) == 0 {
		if dl, ok := ctx.Deadline(); ok {
			_ = c.ws.SetReadDeadline(dl)
		} else {
			_ = c.ws.SetReadDeadline(time.Time{})
		}
		mt, msg, err := c.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return nil, &CloseError{Code: ce.Code, Text: ce.Text}
			}
			return nil, err
		}
		if mt != websocket.BinaryMessage {
			return nil, fmt.Errorf("client: server sent message type %d", mt)
		}
		if err := c.decode(msg); err != nil {
			return nil, err
		}
	}
	f := c.pending[0]
	c.pending = c.pending[1:]
	return &f, nil
}

func (c *Conn) decode(msg []byte) error {
	var err error
	c.split, err = protocol.Split(c.split[:0], msg, 0)
	if err != nil {
		return err
	}
	for _, fb := range c.split {
		var f protocol.Frame
		if err := protocol.DecodeFrame(fb, &f); err != nil {
			return err
		}
		c.pending = append(c.pending, f)
	}
	return nil
}

// Expect returns the next frame whose type is t, skipping pings (and, when
// skip is set, any other type in skip).
func (c *Conn) Expect(ctx context.Context, t string, skip ...string) (*protocol.Frame, error) {
	for {
		f, err := c.Next(ctx)
		if err != nil {
			return nil, err
		}
		if f.T == t {
			return f, nil
		}
		if f.T == protocol.TypePing || contains(skip, f.T) {
			continue
		}
		return f, fmt.Errorf("client: want %q, got %q (code %d %s)", t, f.T, f.Code, f.Msg)
	}
}

func contains(l []string, v string) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// Hello sends hello (with tok when not empty) and waits for welcome.
func (c *Conn) Hello(ctx context.Context, tok string, extra M) error {
	h := M{"t": "hello", "v": 1}
	if tok != "" {
		h["tok"] = tok
	}
	for k, v := range extra {
		h[k] = v
	}
	if err := c.Send(h); err != nil {
		return err
	}
	f, err := c.Expect(ctx, protocol.TypeWelcome)
	if err != nil {
		return err
	}
	c.Welcome = *f
	return nil
}

// Members decodes a raw array of presence members.
func Members(raw protocol.Raw) ([]protocol.Member, error) {
	var m []protocol.Member
	if raw.IsNil() {
		return nil, nil
	}
	err := msgpack.Unmarshal(raw, &m)
	return m, err
}

// Log decodes a joined frame's raw log into frames.
func Log(raw protocol.Raw) ([]protocol.Frame, error) {
	var items []msgpack.RawMessage
	if raw.IsNil() {
		return nil, nil
	}
	if err := msgpack.Unmarshal(raw, &items); err != nil {
		return nil, err
	}
	out := make([]protocol.Frame, len(items))
	for i, it := range items {
		if err := protocol.DecodeFrame(it, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Value decodes a raw payload into a Go value.
func Value(raw protocol.Raw) (any, error) {
	var v any
	if raw.IsNil() {
		return nil, nil
	}
	err := msgpack.Unmarshal(raw, &v)
	return v, err
}
