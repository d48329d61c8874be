package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/roomd/roomd/protocol"
)

// Per source address, the server bounds the WebSocket connections waiting
// for hello (Config.MaxPendingPerAddr) and the rate of new WebSocket
// connections and SSE streams (Config.ConnRatePerAddr, ConnBurstPerAddr),
// so that one address flooding the node with connections that never speak
// cannot fill the node-wide pending limit and lock every other address out.
//
// A source address is the peer's IP, or, when the peer is a trusted proxy
// (Config.TrustedProxies), the client address the proxy reports in
// X-Forwarded-For or Forwarded. An IPv6 address counts by its /64: one host
// is given a whole /64 as readily as one address.

// Limit names, for Metrics.LimitRefused and the docs.
const (
	limitPending     = "pending"
	limitAddrPending = "addr_pending"
	limitAddrRate    = "addr_rate"
	limitConnOps     = "conn_ops"
)

// addrEntry is what the server keeps of one source address. Server.mu.
type addrEntry struct {
	pending int           // connections upgraded, hello not yet handled
	lim     *rate.Limiter // new connections
}

// addrSweepMin is the number of tracked addresses below which idle entries
// are left alone.
const addrSweepMin = 1024

// addrTable maps source addresses to their entries. Server.mu guards it.
type addrTable struct {
	m         map[netip.Addr]*addrEntry
	nextSweep int
}

// addrEntryLocked returns the entry of a, made on demand. Server.mu held.
func (s *Server) addrEntryLocked(a netip.Addr, now time.Time) *addrEntry {
	t := &s.addrs
	if e := t.m[a]; e != nil {
		return e
	}
	if t.m == nil {
		t.m = make(map[netip.Addr]*addrEntry)
	}
	if len(t.m) >= max(t.nextSweep, addrSweepMin) {
		s.sweepAddrsLocked(now)
	}
	e := &addrEntry{lim: rate.NewLimiter(rate.Limit(s.cfg.ConnRatePerAddr), s.cfg.ConnBurstPerAddr)}
	t.m[a] = e
	return e
}

// sweepAddrsLocked forgets the addresses with nothing pending whose rate
// limiter refilled: a new entry for them would be the same. Server.mu held.
func (s *Server) sweepAddrsLocked(now time.Time) {
	burst := float64(s.cfg.ConnBurstPerAddr)
	for a, e := range s.addrs.m {
		if e.pending == 0 && e.lim.TokensAt(now) >= burst {
			delete(s.addrs.m, a)
		}
	}
	s.addrs.nextSweep = 2 * len(s.addrs.m)
}

// admitAddrLocked takes one new connection of a source address through its rate
// limit and, for a WebSocket (pending), its pending limit. It returns the
// limit that refused it, or "" when admitted (then a pending connection is
// counted until releaseAddrLocked). Server.mu held.
func (s *Server) admitAddrLocked(a netip.Addr, pending bool) string {
	now := time.Now()
	e := s.addrEntryLocked(a, now)
	if pending && e.pending >= s.cfg.MaxPendingPerAddr {
		return limitAddrPending
	}
	if !e.lim.AllowN(now, 1) {
		return limitAddrRate
	}
	if pending {
		e.pending++
	}
	return ""
}

// releaseAddrLocked uncounts a pending connection of a. Server.mu held.
func (s *Server) releaseAddrLocked(a netip.Addr) {
	if e := s.addrs.m[a]; e != nil && e.pending > 0 {
		e.pending--
	}
}

// refuseAddr answers a connection refused by a per-address limit: HTTP 429,
// code rate_limited; the client retries after backoff.
func (s *Server) refuseAddr(w http.ResponseWriter, limit string) {
	s.cfg.Metrics.LimitRefused(limit)
	s.errorCode(protocol.CodeRateLimited)
	msg := "too many new connections from this address"
	if limit == limitAddrPending {
		msg = "too many connections from this address waiting for hello"
	}
	writeAPIError(w, http.StatusTooManyRequests, protocol.CodeRateLimited, msg)
}

// admitSSE takes an SSE stream through its address's rate limit. A refused
// stream is a passing condition (PROTOCOL.md §3.3): a 200 stream holding
// retry and bye rate_limited, so that EventSource retries after the delay.
func (s *Server) admitSSE(w http.ResponseWriter, r *http.Request) bool {
	a := s.clientAddr(r)
	s.mu.Lock()
	limit := s.admitAddrLocked(a, false)
	s.mu.Unlock()
	if limit == "" {
		return true
	}
	s.cfg.Metrics.LimitRefused(limit)
	o := &sseObserver{srv: s, wake: make(chan struct{}, 1), rc: http.NewResponseController(w)}
	startStream(w, r)
	o.close(byeFrame{protocol.CodeRateLimited, "too many new connections from this address"}, time.Time{})
	o.stream(r.Context(), w)
	return false
}

// clientAddr is the request's source address, as limits count it: the
// peer's IP, or the client a trusted proxy reports; an IPv6 address is
// reduced to its /64.
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	a := peerAddr(r.RemoteAddr)
	if s.trusted(a) {
		if c, ok := s.forwardedFor(r); ok {
			a = c
		}
	}
	return addrKey(a)
}

// peerAddr parses an http.Request's RemoteAddr; the zero Addr when it
// cannot be read (then every such request counts as one address).
func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

func addrKey(a netip.Addr) netip.Addr {
	if a.Is6() && !a.Is4In6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedFor reads the client address that trusted proxies put in
// X-Forwarded-For (else Forwarded's for=): the right-most address that is
// not itself a trusted proxy, since every proxy appends what it saw and
// only the trusted ones' entries can be believed.
func (s *Server) forwardedFor(r *http.Request) (netip.Addr, bool) {
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		for _, p := range strings.Split(h, ",") {
			hops = append(hops, strings.TrimSpace(p))
		}
	}
	if len(hops) == 0 {
		for _, h := range r.Header.Values("Forwarded") {
			for _, elem := range strings.Split(h, ",") {
				for _, pair := range strings.Split(elem, ";") {
					k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
					if ok && strings.EqualFold(k, "for") {
						hops = append(hops, strings.Trim(v, `"`))
					}
				}
			}
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a := forwardedAddr(hops[i])
		if !a.IsValid() {
			return netip.Addr{}, false // an entry we cannot read: believe nothing left of it
		}
		if !s.trusted(a) {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// forwardedAddr reads one hop: "1.2.3.4", "1.2.3.4:5678", "2001:db8::1",
// "[2001:db8::1]:443" (Forwarded's quoted form, quotes already trimmed).
func forwardedAddr(h string) netip.Addr {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap()
	}
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return ap.Addr().Unmap()
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		if a, err := netip.ParseAddr(h[1 : len(h)-1]); err == nil {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}
