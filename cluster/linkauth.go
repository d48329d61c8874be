package cluster

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/roomd/roomd/cluster/membership"
)

// How peer links prove that both ends know the cluster secret without
// sending it, and how the secret keys gossip.
//
// The dialer first asks the peer for a challenge (GET /v1/peer without an
// upgrade): a fresh server nonce, stamped with the server's clock and
// MACed with its own key, so the server keeps no state for it. The dialer
// then upgrades with its name, incarnation, its own nonce, the challenge
// and HMAC-SHA256(link key, transcript), where the transcript binds the
// dialer's name and incarnation, the server's name, and both nonces. The
// server checks the challenge (its own, under linkChallengeTTL old, never
// used before), the proof, and answers the upgrade with its incarnation and
// its own proof over the same transcript, which the dialer checks before it
// uses the link. A captured handshake replayed fails: its challenge is used
// (or expired). Every comparison is constant-time; the secret itself is
// only ever an HKDF input.

// HKDF info strings: each key derived from the secret has its own.
const (
	infoGossipKey = "roomd cluster gossip key v1"
	infoLinkKey   = "roomd cluster peer link key v1"
)

// Headers of a link's handshake. hdrNode and hdrIncarnation are in link.go.
const (
	hdrChallenge = "X-Roomd-Challenge" // the server's nonce (its answer to a plain GET, then echoed)
	hdrNonce     = "X-Roomd-Nonce"     // the dialer's nonce
	hdrProof     = "X-Roomd-Proof"     // HMAC of the transcript (the dialer's; the server's in the answer)
)

// linkChallengeTTL is how long a challenge may be answered: a dial takes
// both requests within LinkDialTimeout, and so must any replay.
const linkChallengeTTL = 30 * time.Second

// Sentinel errors of the handshake; none says which check failed to the
// other side (it sees 401).
var (
	errBadChallenge = errors.New("peer link: challenge not issued here, expired or already used")
	errBadProof     = errors.New("peer link: proof does not match (wrong cluster secret?)")
)

// GossipKey derives memberlist's 32-byte encryption key from the cluster
// secret (HKDF-SHA256), so that one secret encrypts and authenticates
// gossip too unless an explicit key is given.
func GossipKey(secret []byte) []byte {
	return deriveKey(secret, infoGossipKey)
}

func deriveKey(secret []byte, info string) []byte {
	k, err := hkdf.Key(sha256.New, secret, nil, info, 32)
	if err != nil {
		panic(err) // only for lengths HKDF cannot produce
	}
	return k
}

// linkAuth holds a node's link key and the challenges already answered.
type linkAuth struct {
	key  []byte
	self string

	mu   sync.Mutex
	used map[string]time.Time // challenge → when it expires
}

func newLinkAuth(secret []byte, self string) *linkAuth {
	return &linkAuth{key: deriveKey(secret, infoLinkKey), self: self, used: map[string]time.Time{}}
}

func (a *linkAuth) mac(parts ...[]byte) []byte {
	m := hmac.New(sha256.New, a.key)
	for _, p := range parts {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		m.Write(n[:])
		m.Write(p)
	}
	return m.Sum(nil)
}

var b64 = base64.RawURLEncoding

// challenge issues a fresh challenge: time, nonce and a MAC of both with
// this node's name.
func (a *linkAuth) challenge(now time.Time) string {
	var body [8 + 16]byte
	binary.BigEndian.PutUint64(body[:8], uint64(now.UnixNano()))
	_, _ = rand.Read(body[8:])
	tag := a.mac([]byte("challenge"), []byte(a.self), body[:])
	return b64.EncodeToString(append(body[:], tag...))
}

// useChallenge checks that ch was issued here less than linkChallengeTTL
// ago and was never used, and marks it used. Only a caller whose proof
// checked out uses one, so the set holds authenticated handshakes only.
func (a *linkAuth) useChallenge(ch string, now time.Time) error {
	raw, err := b64.DecodeString(ch)
	if err != nil || len(raw) != 8+16+sha256.Size {
		return errBadChallenge
	}
	body, tag := raw[:24], raw[24:]
	if !hmac.Equal(tag, a.mac([]byte("challenge"), []byte(a.self), body)) {
		return errBadChallenge
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(body[:8])))
	if now.Before(issued) || now.Sub(issued) > linkChallengeTTL {
		return errBadChallenge
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, exp := range a.used {
		if now.After(exp) {
			delete(a.used, k)
		}
	}
	if _, ok := a.used[ch]; ok {
		return errBadChallenge
	}
	a.used[ch] = issued.Add(linkChallengeTTL)
	return nil
}

// linkTranscript is what both proofs cover.
type linkTranscript struct {
	dialer, server   string
	dialerInc        int64
	challenge, nonce string
}

func (a *linkAuth) proof(role string, t linkTranscript, serverInc int64) []byte {
	return a.mac([]byte(role), []byte(t.dialer), []byte(strconv.FormatInt(t.dialerInc, 10)),
		[]byte(t.server), []byte(strconv.FormatInt(serverInc, 10)), []byte(t.challenge), []byte(t.nonce))
}

// dialerProof and serverProof are the two sides' proofs; the dialer's does
// not know the server's incarnation yet.
func (a *linkAuth) dialerProof(t linkTranscript) string {
	return b64.EncodeToString(a.proof("dial", t, 0))
}

func (a *linkAuth) serverProof(t linkTranscript, serverInc int64) string {
	return b64.EncodeToString(a.proof("accept", t, serverInc))
}

// checkProof compares a received proof with the expected one in constant
// time.
func checkProof(got, want string) error {
	g, err := b64.DecodeString(got)
	w, _ := b64.DecodeString(want)
	if err != nil || !hmac.Equal(g, w) {
		return errBadProof
	}
	return nil
}

// newNonce is the dialer's fresh nonce.
func newNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return b64.EncodeToString(b[:])
}

// dialerTranscript reads the dialer's side of a handshake from an upgrade
// request to this node.
func dialerTranscript(r *http.Request, self string) (linkTranscript, bool) {
	inc, err := strconv.ParseInt(r.Header.Get(hdrIncarnation), 10, 64)
	t := linkTranscript{
		dialer: r.Header.Get(hdrNode), server: self, dialerInc: inc,
		challenge: r.Header.Get(hdrChallenge), nonce: r.Header.Get(hdrNonce),
	}
	return t, err == nil && t.dialer != "" && t.challenge != "" && t.nonce != ""
}

// verification is a peer's last proof of the secret: in which of its
// incarnations, and when.
type verification struct {
	inc int64
	at  time.Time
}

// verifiedKeep is how long a verification outlives the peer's absence from
// membership. A link can be proved before gossip has told this node of the
// dialer (a peer that joined through this node dials it as soon as the join
// returns, while this node may not have merged the joiner's state yet), and
// such a verification must still be there when gossip catches up: nothing
// proves the peer again while its link stays up.
const verifiedKeep = time.Minute

// markVerified remembers that peer, in its incarnation inc, proved it knows
// the secret: only such members enter placement (refresh.go).
func (c *Cluster) markVerified(peer string, inc int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.verified[peer]
	c.verified[peer] = verification{inc: inc, at: time.Now()}
	if prev.inc != inc {
		c.requestRefresh()
	}
}

// verifiedNodesLocked returns nodes less the peers not verified in their
// current incarnation (this node always is), and forgets the verifications
// of names no longer known, once they have no link and are verifiedKeep
// old.
func (c *Cluster) verifiedNodesLocked(nodes []membership.Node) []membership.Node {
	out := make([]membership.Node, 0, len(nodes))
	known := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		known[n.Name] = true
		if n.Name == c.self || c.verified[n.Name].inc == n.Meta.Incarnation && n.Meta.Incarnation != 0 {
			out = append(out, n)
		}
	}
	for name, v := range c.verified {
		if !known[name] && c.links[name] == nil && time.Since(v.at) > verifiedKeep {
			delete(c.verified, name)
		}
	}
	return out
}
