package server

import (
	"context"
	"net/http"
	"time"
)

// The net/http writer of an SSE stream (TLS, HTTP/2, or where raw streams
// are not possible; sse_raw.go is the other): the handler's goroutine
// writes each batch through the ResponseWriter and flushes it, under a
// write deadline.

// stream writes events until the stream ends: a bye, a failed write, or the
// client gone (ctx done). The response's headers are already decided.
func (o *sseObserver) stream(ctx context.Context, w http.ResponseWriter) {
	sw := &sseWriter{w: w}
	interval := o.srv.cfg.SSEPingInterval
	if !o.write(sw, func() { sw.retry(o.srv.cfg.SSERetry) }) {
		return
	}
	ping := time.NewTimer(interval)
	defer ping.Stop()
	for {
		batch, bye := o.take()
		if len(batch) > 0 {
			ok := o.write(sw, func() { bye = o.writeBatch(sw, batch) })
			o.done(batch)
			if !ok {
				return
			}
		}
		if bye != nil {
			o.srv.byeCode(bye.code)
			o.write(sw, func() { sw.bye(*bye) })
			return
		}
		if len(batch) > 0 {
			ping.Reset(interval)
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		case <-ping.C:
			if !o.write(sw, sw.ping) {
				return
			}
			ping.Reset(interval)
		}
	}
}

// write runs fill, which writes through sw, and flushes, under a write
// deadline. It reports whether everything was written.
func (o *sseObserver) write(sw *sseWriter, fill func()) bool {
	if !o.beginWrite() {
		return false
	}
	defer o.endWrite()
	sw.n, sw.events = 0, 0
	fill()
	if sw.err == nil {
		sw.err = o.rc.Flush()
	}
	if sw.n > 0 {
		o.srv.cfg.Metrics.MessageOut(sw.events, sw.n)
	}
	return sw.err == nil
}

// beginWrite sets the write deadline of the next write. It reports false
// when the stream must not write anymore (shutdown's deadline passed).
func (o *sseObserver) beginWrite() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	dl, capped := o.writeDeadlineLocked(now)
	if !dl.After(now) {
		return false
	}
	o.writing = true
	// The deadline moves when a quarter of WriteTimeout has passed, not
	// before every write (a write is cut after 3/4 to all of WriteTimeout):
	// setting it is a timer operation, a tenth of a small write's cost.
	if capped || o.writeDL.Sub(now) < o.srv.cfg.WriteTimeout*3/4 {
		o.writeDL = dl
		_ = o.rc.SetWriteDeadline(dl)
	}
	return true
}

// writeDeadlineLocked is the deadline of a write starting at now:
// WriteTimeout, capped by shutdown's deadline (capped). o.mu held.
func (o *sseObserver) writeDeadlineLocked(now time.Time) (dl time.Time, capped bool) {
	dl = now.Add(o.srv.cfg.WriteTimeout)
	if !o.hardDL.IsZero() && o.hardDL.Before(dl) {
		return o.hardDL, true
	}
	return dl, false
}

func (o *sseObserver) endWrite() {
	o.mu.Lock()
	o.writing = false
	o.mu.Unlock()
}
