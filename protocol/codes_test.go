package protocol

import (
	"errors"
	"fmt"
	"sort"
	"testing"
)

// The code table of the contract, by value: a renumbered or renamed code
// breaks every client.
var contractCodes = map[Code]string{
	0: "normal", 1: "shutdown", 2: "slow_consumer", 3: "no_pong", 4: "token_expired",
	5: "rate_limited", 6: "unavailable", 7: "overloaded", 8: "internal", 9: "room_moved",
	100: "bad_request", 101: "unknown_type", 102: "invalid_room", 103: "too_large",
	104: "not_joined", 105: "already_joined", 106: "room_full", 107: "forbidden", 108: "limit",
	109: "not_found", 110: "denied",
	500: "bad_protocol", 501: "unauthorized", 502: "unsupported_version", 503: "kicked",
	504: "too_many_connections",
}

func TestCodeTable(t *testing.T) {
	codes := Codes()
	if len(codes) != len(codeNames) {
		t.Fatalf("Codes() has %d codes, the name table %d", len(codes), len(codeNames))
	}
	if len(codes) != len(contractCodes) {
		t.Fatalf("Codes() has %d codes, the contract %d", len(codes), len(contractCodes))
	}
	if !sort.SliceIsSorted(codes, func(i, j int) bool { return codes[i] < codes[j] }) {
		t.Fatalf("Codes() not in ascending order: %v", codes)
	}
	seen := map[string]Code{}
	for _, c := range codes {
		name, ok := codeNames[c]
		if !ok {
			t.Errorf("code %d has no name", c)
		}
		if prev, dup := seen[name]; dup {
			t.Errorf("name %q used by %d and %d", name, prev, c)
		}
		seen[name] = c
		if name != contractCodes[c] {
			t.Errorf("code %d is %q, the contract says %q", c, name, contractCodes[c])
		}
		if c.String() != name {
			t.Errorf("Code(%d).String() = %q, want %q", c, c.String(), name)
		}
	}
	for c := range codeNames {
		if _, ok := seen[codeNames[c]]; !ok {
			t.Errorf("code %d (%s) is named but missing from Codes()", c, codeNames[c])
		}
	}
	if got := Code(42).String(); got != "code_42" {
		t.Errorf("Code(42).String() = %q", got)
	}
}

func TestCodeReconnect(t *testing.T) {
	for _, c := range Codes() {
		if want := c < 500; c.Reconnect() != want {
			t.Errorf("%v.Reconnect() = %v, want %v", c, c.Reconnect(), want)
		}
	}
	for _, c := range []Code{499, 10, 200} {
		if !c.Reconnect() {
			t.Errorf("undefined code %d below 500 must allow reconnect", c)
		}
	}
	for _, c := range []Code{500, 505, 999} {
		if c.Reconnect() {
			t.Errorf("code %d must be terminal", c)
		}
	}
}

func TestCloseCodes(t *testing.T) {
	for _, c := range Codes() {
		cc := c.CloseCode()
		if cc != 4000+int(c) {
			t.Errorf("%v.CloseCode() = %d", c, cc)
		}
		back, ok := CodeFromClose(cc)
		if !ok || back != c {
			t.Errorf("CodeFromClose(%d) = %v, %v; want %v", cc, back, ok, c)
		}
	}
	for _, tc := range []struct {
		close int
		want  Code
		ok    bool
	}{
		{4000, CodeNormal, true},
		{4004, CodeTokenExpired, true},
		{4103, CodeTooLarge, true},
		{4500, CodeBadProtocol, true},
		{4999, 999, true},
		{1000, 0, false},
		{1006, 0, false},
		{3999, 0, false},
		{5000, 0, false},
		{-4000, 0, false},
	} {
		got, ok := CodeFromClose(tc.close)
		if got != tc.want || ok != tc.ok {
			t.Errorf("CodeFromClose(%d) = %v, %v; want %v, %v", tc.close, got, ok, tc.want, tc.ok)
		}
	}
}

func TestHTTPStatus(t *testing.T) {
	want := map[Code]int{
		CodeNormal:        500,
		CodeShutdown:      503,
		CodeSlowConsumer:  500,
		CodeNoPong:        500,
		CodeTokenExpired:  401,
		CodeRateLimited:   429,
		CodeUnavailable:   503,
		CodeOverloaded:    503,
		CodeInternal:      500,
		CodeRoomMoved:     503,
		CodeBadRequest:    400,
		CodeUnknownType:   400,
		CodeInvalidRoom:   400,
		CodeTooLarge:      413,
		CodeNotJoined:     404,
		CodeAlreadyJoined: 409,
		CodeRoomFull:      429,
		CodeForbidden:     403,
		CodeLimit:         429,
		CodeNotFound:      404,
		CodeDenied:        403,
		CodeBadProtocol:   400,
		CodeUnauthorized:  401,
		CodeUnsupported:   400,
		CodeKicked:        403,
		CodeTooManyConns:  429,
	}
	for _, c := range Codes() {
		got := c.HTTPStatus()
		w, ok := want[c]
		if !ok {
			t.Errorf("no expected status for %v", c)
			continue
		}
		if got != w {
			t.Errorf("%v.HTTPStatus() = %d, want %d", c, got, w)
		}
		if got < 400 || got > 599 {
			t.Errorf("%v.HTTPStatus() = %d is not an error status", c, got)
		}
		// Client errors are 4xx; server-side trouble is 5xx.
		if c >= 100 && c < 200 && got >= 500 {
			t.Errorf("request error %v maps to %d", c, got)
		}
	}
	if got := Code(777).HTTPStatus(); got != 500 {
		t.Errorf("unknown code status = %d, want 500", got)
	}
}

func TestError(t *testing.T) {
	err := Errorf(CodeTooLarge, "payload of %d bytes", 70000)
	if err.Error() != "too_large: payload of 70000 bytes" {
		t.Errorf("Error() = %q", err.Error())
	}
	wrapped := fmt.Errorf("pub: %w", err)
	var pe *Error
	if !errors.As(wrapped, &pe) || pe.Code != CodeTooLarge {
		t.Errorf("errors.As through a wrap: %v", pe)
	}
	if e := NewError(CodeForbidden, "no pub"); e.Code != CodeForbidden || e.Msg != "no pub" {
		t.Errorf("NewError = %+v", e)
	}
}
