package wsframe

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// ErrHandshake is wrapped by every ClientHandshake failure that is the
// server's answer (not the network's).
var ErrHandshake = errors.New("wsframe: bad handshake")

// acceptGUID is the GUID of RFC 6455 §1.3.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey is the Sec-WebSocket-Accept value answering key.
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + acceptGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// ClientHandshake makes the opening handshake of §4.1 on conn (already
// dialed, TLS included): a GET of url (path and query; host sets Host)
// with header and the one subprotocol asked for. It returns the reader to
// read frames from, which holds any bytes the server sent after its
// answer, and the answer (its body empty). The caller sets a deadline on
// conn beforehand.
func ClientHandshake(conn net.Conn, host, path, subprotocol string, header http.Header) (*bufio.Reader, *http.Response, error) {
	u, err := url.ParseRequestURI(path)
	if err != nil {
		return nil, nil, err
	}
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := &http.Request{
		Method: http.MethodGet, Host: host, Header: http.Header{},
		URL: u, ProtoMajor: 1, ProtoMinor: 1, Proto: "HTTP/1.1",
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", key)
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Protocol", subprotocol)
	if err := req.Write(conn); err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(conn, 32<<10)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, nil, err
	}
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		return nil, resp, fmt.Errorf("%w: HTTP %d", ErrHandshake, resp.StatusCode)
	case !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") || !headerHas(resp.Header, "Connection", "upgrade"):
		return nil, resp, fmt.Errorf("%w: not an upgrade to websocket", ErrHandshake)
	case resp.Header.Get("Sec-WebSocket-Accept") != AcceptKey(key):
		return nil, resp, fmt.Errorf("%w: Sec-WebSocket-Accept does not match", ErrHandshake)
	case resp.Header.Get("Sec-WebSocket-Protocol") != subprotocol:
		return nil, resp, fmt.Errorf("%w: subprotocol %q, want %q", ErrHandshake, resp.Header.Get("Sec-WebSocket-Protocol"), subprotocol)
	}
	return br, resp, nil
}

// headerHas reports whether a comma-separated header holds token.
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
