package hooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// The signature of a request: header Roomd-Signature
//
//	t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>
//
// A backend recomputes v1 over the timestamp it was given and the raw body,
// compares in constant time, and refuses a timestamp further than its
// replay window (5 minutes is usual) from its clock: a captured request
// cannot be replayed after the window, nor its body changed.
const (
	SignatureHeader = "Roomd-Signature"
	// HookHeader carries the hook's name, as the body's "hook" does.
	HookHeader = "Roomd-Hook"
	// DefaultReplayWindow is Verify's window when given zero.
	DefaultReplayWindow = 5 * time.Minute
)

// Errors of Verify.
var (
	ErrSignatureMissing = errors.New("hooks: no valid signature header")
	ErrSignatureStale   = errors.New("hooks: signature timestamp outside the replay window")
	ErrSignatureInvalid = errors.New("hooks: signature does not match")
)

// Sign returns the Roomd-Signature value of body at t.
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a Roomd-Signature header against body at now: the
// timestamp within window of now (zero: DefaultReplayWindow), and a v1
// made with one of secrets (several during a rotation).
func Verify(header string, body []byte, now time.Time, window time.Duration, secrets ...[]byte) error {
	if window <= 0 {
		window = DefaultReplayWindow
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrSignatureMissing
	}
	if d := now.Sub(time.Unix(sec, 0)); d > window || d < -window {
		return ErrSignatureStale
	}
	for _, s := range secrets {
		want := mac(s, ts, body)
		for _, got := range sigs {
			if hmac.Equal(want, got) {
				return nil
			}
		}
	}
	return ErrSignatureInvalid
}
