package histcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// LoadConfig describes a workload.
type LoadConfig struct {
	// URLs are the nodes' base URLs. Required.
	URLs []string
	// Rooms are the rooms every client joins. Required.
	Rooms []string
	// Publishers is the number of publishing clients; zero means 1.
	// Publisher i connects first to URLs[i % len(URLs)].
	Publishers int
	// Subscribers is the number of recording clients; zero means one per
	// URL. Subscriber i connects first to URLs[i % len(URLs)].
	Subscribers int
	// Rate is each publisher's publishes per second, its rooms in turn.
	// Zero means 50.
	Rate float64
	// MaxMessages bounds each publisher's messages; zero means no bound
	// (until StopPublishing).
	MaxMessages int
	// MaxInFlight bounds each publisher's unacknowledged messages: a tick
	// that finds that many waiting publishes nothing. Zero means 64.
	MaxInFlight int
	// Silence is the clients' dead-link timeout (MemberConfig.Silence).
	Silence time.Duration
	// HTTP fetches the rooms' final histories. Nil means a client with a
	// 2 s timeout and no keep-alive.
	HTTP *http.Client
	// History receives the record; nil means a new one.
	History *History
}

// Load is a running workload: publishers and subscribers over the nodes.
type Load struct {
	cfg     LoadConfig
	hist    *History
	pubs    []*Member
	subs    []*Member
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	stopPub context.CancelFunc
	pubWG   sync.WaitGroup
}

// Start connects the clients, waits until each has joined every room (up
// to 20 s), and starts publishing. Stop (or Finish) ends it.
func Start(cfg LoadConfig) (*Load, error) {
	if len(cfg.URLs) == 0 || len(cfg.Rooms) == 0 {
		return nil, errors.New("histcheck: a load needs URLs and rooms")
	}
	if cfg.Publishers == 0 {
		cfg.Publishers = 1
	}
	if cfg.Subscribers == 0 {
		cfg.Subscribers = len(cfg.URLs)
	}
	if cfg.Rate == 0 {
		cfg.Rate = 50
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 64
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	}
	if cfg.History == nil {
		cfg.History = NewHistory()
	}
	l := &Load{cfg: cfg, hist: cfg.History}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	member := func(name string, i int, record bool) *Member {
		urls := append(append([]string(nil), cfg.URLs[i%len(cfg.URLs):]...), cfg.URLs[:i%len(cfg.URLs)]...)
		m, _ := NewMember(MemberConfig{Name: name, URLs: urls, Rooms: cfg.Rooms, History: l.hist, Record: record, Silence: cfg.Silence})
		l.wg.Add(1)
		go func() { defer l.wg.Done(); m.Run(ctx) }()
		return m
	}
	for i := range cfg.Subscribers {
		l.subs = append(l.subs, member(fmt.Sprintf("sub%d", i), i, true))
	}
	for i := range cfg.Publishers {
		l.pubs = append(l.pubs, member(fmt.Sprintf("pub%d", i), i, false))
	}
	if err := waitFor(ctx, 20*time.Second, l.allJoined); err != nil {
		l.Stop()
		return nil, fmt.Errorf("histcheck: clients not joined: %w", err)
	}
	pctx, stopPub := context.WithCancel(ctx)
	l.stopPub = stopPub
	for _, p := range l.pubs {
		l.pubWG.Add(1)
		go func() { defer l.pubWG.Done(); l.publish(pctx, p) }()
	}
	return l, nil
}

// History is the workload's record.
func (l *Load) History() *History { return l.hist }

// Subscribers are the recording clients.
func (l *Load) Subscribers() []*Member { return l.subs }

// Acked is the number of publishes acknowledged so far.
func (l *Load) Acked() int { return l.hist.Count(OpAck) }

// WaitAcked waits up to timeout until n publishes in all have been
// acknowledged.
func (l *Load) WaitAcked(n int, timeout time.Duration) error {
	return waitFor(context.Background(), timeout, func() error {
		if got := l.Acked(); got < n {
			return fmt.Errorf("%d of %d publishes acknowledged", got, n)
		}
		return nil
	})
}

func (l *Load) allJoined() error {
	for _, m := range append(append([]*Member(nil), l.subs...), l.pubs...) {
		if err := m.Err(); err != nil {
			return err
		}
		for _, r := range l.cfg.Rooms {
			if _, _, ok := m.Position(r); !ok {
				return fmt.Errorf("%s has not joined %s", m.cfg.Name, r)
			}
		}
	}
	return nil
}

// publish sends p's messages at the configured rate until ctx ends or
// MaxMessages are sent.
func (l *Load) publish(ctx context.Context, p *Member) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / l.cfg.Rate))
	defer tick.Stop()
	for i := 0; l.cfg.MaxMessages == 0 || i < l.cfg.MaxMessages; {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if p.Pending() >= l.cfg.MaxInFlight {
			continue
		}
		p.Publish(l.cfg.Rooms[i%len(l.cfg.Rooms)], fmt.Sprintf("%s-%d", p.cfg.Name, i))
		i++
	}
}

// StopPublishing stops the publishers' ticks; their unacknowledged
// publishes are still sent again until acknowledged.
func (l *Load) StopPublishing() {
	l.stopPub()
	l.pubWG.Wait()
}

// Finish ends the workload and judges it: it stops publishing, waits up to
// timeout for the outstanding publishes' answers, makes every subscriber
// reconnect (to its next node) and re-join with since, waits until each
// stands at every room's final epoch and seq as the nodes' HTTP APIs give
// it, fetches each room's history from every node that answers, stops the
// clients and checks the history. The error says why the end could not be
// reached; the summary is returned either way.
func (l *Load) Finish(timeout time.Duration) (Summary, error) {
	defer l.Stop()
	l.StopPublishing()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	err := waitFor(ctx, time.Until(deadline), func() error {
		for _, p := range l.pubs {
			if n := p.Pending(); n > 0 {
				return fmt.Errorf("%s has %d publishes unanswered", p.cfg.Name, n)
			}
		}
		return nil
	})
	for _, p := range l.pubs {
		p.GiveUp()
	}
	for _, s := range l.subs {
		s.Drop()
	}
	if werr := waitFor(ctx, time.Until(deadline), l.caughtUp); werr != nil {
		err = errors.Join(err, werr)
	}
	for _, r := range l.cfg.Rooms {
		for _, u := range l.cfg.URLs {
			if f, ferr := l.fetchFinal(u, r); ferr == nil {
				l.hist.AddFinal(r, f)
			}
		}
	}
	l.Stop()
	for _, m := range append(append([]*Member(nil), l.subs...), l.pubs...) {
		if merr := m.Err(); merr != nil {
			err = errors.Join(err, merr)
		}
	}
	return l.hist.Check(), err
}

// caughtUp says which subscriber is not yet joined at a room's end, as the
// first node that answers gives it.
func (l *Load) caughtUp() error {
	for _, r := range l.cfg.Rooms {
		epoch, seq, err := l.roomEnd(r)
		if err != nil {
			return err
		}
		for _, s := range l.subs {
			if e, last, ok := s.Position(r); !ok || e != epoch || last != seq {
				return fmt.Errorf("%s stands at %s/%d (joined %v) in %s, which ends at %s/%d", s.cfg.Name, e, last, ok, r, epoch, seq)
			}
		}
	}
	return nil
}

// roomEnd asks the nodes in turn for room's epoch and seq.
func (l *Load) roomEnd(room string) (string, uint64, error) {
	var err error
	for _, u := range l.cfg.URLs {
		var v struct {
			Epoch string
			Seq   uint64
		}
		if err = l.get(u+"/v1/rooms/"+url.PathEscape(room), &v); err == nil {
			return v.Epoch, v.Seq, nil
		}
	}
	return "", 0, err
}

// fetchFinal reads a room's epoch, seq and whole history from one node.
func (l *Load) fetchFinal(base, room string) (Final, error) {
	f := Final{Node: base}
	var info struct {
		Epoch string
		Seq   uint64
		Owner string
	}
	if err := l.get(base+"/v1/rooms/"+url.PathEscape(room), &info); err != nil {
		return f, err
	}
	f.Epoch, f.Seq = info.Epoch, info.Seq
	for since := uint64(0); ; {
		var page struct {
			Epoch  string
			Events []struct {
				Type string
				Seq  uint64
				Key  string
				Data json.RawMessage
			}
		}
		q := base + "/v1/rooms/" + url.PathEscape(room) + "/history?limit=1000&since=" + strconv.FormatUint(since, 10)
		if err := l.get(q, &page); err != nil {
			return f, err
		}
		if page.Epoch != f.Epoch {
			return f, fmt.Errorf("histcheck: %s: epoch %s in history, %s in room", room, page.Epoch, f.Epoch)
		}
		if len(page.Events) == 0 {
			return f, nil
		}
		for _, ev := range page.Events {
			key := "state:" + ev.Key
			if ev.Type == "message" {
				key = ""
				_ = json.Unmarshal(ev.Data, &key)
			}
			f.Entries = append(f.Entries, Entry{Seq: ev.Seq, Key: key})
			since = ev.Seq
		}
	}
}

func (l *Load) get(u string, v any) error {
	resp, err := l.cfg.HTTP.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Stop ends every client and waits for them. It is safe to call twice.
func (l *Load) Stop() {
	if l.stopPub != nil {
		l.stopPub()
	}
	l.cancel()
	l.pubWG.Wait()
	l.wg.Wait()
}

// waitFor polls cond every 10 ms until it returns nil, ctx ends or timeout
// passes, and returns cond's last error in the latter cases.
func waitFor(ctx context.Context, timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		if !sleep(ctx, 10*time.Millisecond) {
			return err
		}
	}
}
