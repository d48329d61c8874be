//go:build linux

package bench

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/roomd/roomd/internal/wsframe"
	"github.com/roomd/roomd/protocol"
)

// The floor scenario measures what this machine's kernel costs per delivery
// with no server at all: one thread of the bench plays a server that does
// nothing but write. It writes each message, a msg frame the size roomd
// would send, to every subscriber socket of its room with one write(2)
// each, over loopback TCP connections the bench opens to itself, while the
// pollers read the subscribers exactly as they read roomd's. Its CPU per
// write is the least any server on this machine spends per delivery when
// every delivery is a system call of its own (a fan-out in which each
// connection gets one message per write), and its latency is that of a
// fan-out written by one core with nothing else to do: the floor under
// roomd's figures for the same scenario.

// floorWriter is the writing side of one room: the sockets it writes, and
// the publisher whose counters the room's trackers check.
type floorWriter struct {
	pub *publisher
	fds []int
	seq uint64
}

func (r *runner) runFloor(ctx context.Context) (*Result, error) {
	c := &r.cfg
	res := &Result{Scenario: c.Scenario, Params: paramsOf(c)}
	r.phase.Store("connecting")
	t0 := time.Now()
	writers, err := r.openFloor(ctx)
	defer func() {
		for _, w := range writers {
			for _, fd := range w.fds {
				closeRaw(fd)
			}
		}
	}()
	if err != nil {
		r.teardown()
		return nil, err
	}
	res.OpenSeconds = time.Since(t0).Seconds()

	start := time.Now().Add(50 * time.Millisecond)
	measure := start.Add(c.Warmup)
	stop := measure.Add(c.Duration)
	var wg sync.WaitGroup
	var ws floorStats
	wg.Add(1)
	go func() {
		defer wg.Done()
		ws = r.floorWrite(ctx, writers, start, measure, stop)
	}()
	r.phase.Store("warmup")
	sleepCtx(ctx, time.Until(measure))
	r.phase.Store("measuring")
	self0, recv0 := selfCPU(), r.received()
	mach0, _ := machineCPU()
	w0 := time.Now()
	wg.Wait()
	r.drain(ctx)
	self1, recv1 := selfCPU(), r.received()
	mach1, _ := machineCPU()
	window := time.Since(w0)
	r.teardown()

	r.collect(res)
	deliveries := recv1 - recv0
	readers := max(0, self1-self0-ws.cpu) // the bench without its writer
	res.Client = CPUStats{CPUSeconds: readers.Seconds(), CPUMicrosPerDelivery: microsPer(readers, deliveries)}
	res.Deliveries = deliveries
	res.DeliveriesPerS = float64(deliveries) / window.Seconds()
	res.Machine = machineStats(window, mach1-mach0, readers, ws.cpu)
	res.Floor = &FloorStats{WriterCPUSeconds: ws.cpu.Seconds(), Writes: ws.writes, CPUMicrosPerWrite: microsPer(ws.cpu, ws.writes),
		WouldBlock: ws.wouldBlock, FrameBytes: ws.frameBytes}
	return res, ctx.Err()
}

// openFloor opens every subscriber as a loopback TCP connection to the
// bench's own listener and hands it to a poller; the accepted ends, as
// non-blocking descriptors, are the writers'.
func (r *runner) openFloor(ctx context.Context) ([]*floorWriter, error) {
	if err := r.startPollers(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	var writers []*floorWriter
	for _, rs := range r.rooms {
		writers = append(writers, &floorWriter{pub: rs.pubs[0]})
	}
	var d net.Dialer
	for _, c := range r.conns {
		if err := ctx.Err(); err != nil {
			return writers, err
		}
		cc, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			return writers, fmt.Errorf("floor: %w", err)
		}
		sc, err := ln.Accept()
		if err != nil {
			_ = cc.Close()
			return writers, fmt.Errorf("floor: %w", err)
		}
		fd, err := detachFD(sc.(*net.TCPConn))
		if err != nil {
			_ = cc.Close()
			return writers, fmt.Errorf("floor: %w", err)
		}
		w := writers[c.room.idx]
		w.fds = append(w.fds, fd)
		c.raw = cc
		c.tr.live.Store(true)
		r.opened.Add(1)
		r.poll(c.idx, c)
	}
	return writers, nil
}

// floorStats is what the writer measured over the window.
type floorStats struct {
	cpu        time.Duration // the writer thread's CPU time
	writes     int64
	wouldBlock int64
	frameBytes int
}

// floorWrite writes the messages from start until stop: message k (due at
// start + k/Rate) goes to room k % Rooms, one write(2) per subscriber, from
// one OS thread of the normal policy (the rest of the bench may be under
// SCHED_BATCH). A message finding a socket full is not written to it (it
// counts as lost, and as would_block). It measures its thread's CPU time
// and writes from the first measured message to the end.
func (r *runner) floorWrite(ctx context.Context, writers []*floorWriter, start, measure, stop time.Time) floorStats {
	runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
	_ = unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_NORMAL}, 0)
	var st floorStats
	var cpu0 time.Duration
	measuring := false
	interval := float64(time.Second) / r.cfg.Rate
	frame := make([]byte, 0, r.cfg.Size+256)
	payload := make([]byte, r.cfg.Size)
	msg := protocol.Msg{T: protocol.TypeMsg, U: "bench", C: "floor000"}
	for k := 0; ; k++ {
		due := start.Add(time.Duration(float64(k) * interval))
		if !due.Before(stop) || ctx.Err() != nil {
			break
		}
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		w := writers[k%len(writers)]
		p := w.pub
		ts := now()
		if ts >= stop.UnixNano() {
			break // fell behind: what was due after the window is not sent
		}
		s := stamp{phase: phaseWarmup, pub: p.id, counter: uint32(k / len(writers)), sentNS: ts}
		if ts >= measure.UnixNano() {
			if !measuring {
				measuring, cpu0 = true, threadCPU()
			}
			s.phase, s.counter = phaseMeasured, uint32(p.measured.Load())
		}
		clear(payload)
		putPayload(payload, s)
		w.seq++
		msg.R, msg.S, msg.D, msg.TS = w.pub.room.name, w.seq, payload, ts/int64(time.Millisecond)
		frame = appendWSFrame(frame[:0], protocol.MustEncode(&msg))
		st.frameBytes = len(frame)
		for _, fd := range w.fds {
			_, err := unix.Write(fd, frame)
			switch {
			case err == unix.EAGAIN:
				if measuring {
					st.wouldBlock++
				}
				r.errs.add("floor:would_block")
			case err != nil:
				r.errs.add("floor:write:" + err.Error())
			}
			if measuring {
				st.writes++
			}
		}
		p.sent.Add(1)
		if measuring {
			p.accepted.set(s.counter)
			p.measured.Add(1)
			p.acked.Add(1)
		}
	}
	if measuring {
		st.cpu = threadCPU() - cpu0
	}
	return st
}

// appendWSFrame appends payload as one unmasked binary WebSocket frame, as
// a server sends it.
func appendWSFrame(b, payload []byte) []byte {
	return append(wsframe.AppendHeader(b, wsframe.OpBinary, len(payload)), payload...)
}

// threadCPU is the calling thread's CPU time.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
