package bench

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/roomd/roomd/protocol"
)

func TestNextFrameReadsServerFrames(t *testing.T) {
	payload := make([]byte, 100)
	putPayload(payload, stamp{phase: phaseMeasured, pub: 7, counter: 42, sentNS: 123456789})
	msg := protocol.MustEncode(&protocol.Msg{T: protocol.TypeMsg, R: "chat:lobby", S: 99999, U: "u1", C: "c1", D: payload, TS: 1700000000000})
	pres := protocol.MustEncode(&protocol.Pres{T: protocol.TypePres, R: "chat:lobby",
		Join: []protocol.Member{{C: "c2", U: "u2", D: protocol.MustEncode(map[string]any{"x": []any{1, 2.5, "y", nil, true}})}}})
	ok := protocol.MustEncode(protocol.OK{T: protocol.TypeOK, ID: 300, S: 7})
	bye := protocol.MustEncode(protocol.Bye{T: protocol.TypeBye, Code: protocol.CodeSlowConsumer, Msg: "x"})
	buf := bytes.Join([][]byte{pres, msg, ok, bye}, nil)

	var f frameView
	off, err := nextFrame(buf, 0, &f)
	if err != nil || string(f.t) != "pres" || off != len(pres) {
		t.Fatalf("pres: %q %d %v", f.t, off, err)
	}
	off, err = nextFrame(buf, off, &f)
	if err != nil || string(f.t) != "msg" || string(f.r) != "chat:lobby" || f.s != 99999 || !bytes.Equal(f.d, payload) {
		t.Fatalf("msg: %+v %v", f, err)
	}
	st, good := readPayload(f.d)
	if !good || st != (stamp{phase: phaseMeasured, pub: 7, counter: 42, sentNS: 123456789}) {
		t.Fatalf("stamp %+v %v", st, good)
	}
	off, err = nextFrame(buf, off, &f)
	if err != nil || string(f.t) != "ok" || f.id != 300 || f.s != 7 {
		t.Fatalf("ok: %+v %v", f, err)
	}
	off, err = nextFrame(buf, off, &f)
	if err != nil || string(f.t) != "bye" || f.code != 2 || off != len(buf) {
		t.Fatalf("bye: %+v %v", f, err)
	}
	for i := range len(buf) - 1 {
		o := 0
		var err error
		for o < i && err == nil {
			o, err = nextFrame(buf[:i], o, &f)
		}
		if o == i && err == nil {
			continue // cut on a frame boundary
		}
		if err == nil {
			t.Fatalf("truncated at %d: no error", i)
		}
	}
}

func TestPubEncoderFrames(t *testing.T) {
	for _, size := range []int{MinPayload, 100, 300, 70000} {
		e := newPubEncoder("bench:r-1", size)
		e.append(5, stamp{phase: phaseWarmup, pub: 1, counter: 5, sentNS: 77})
		e.append(6, stamp{phase: phaseMeasured, pub: 1, counter: 0, sentNS: 78})
		frames, err := protocol.Split(nil, e.buf, 0)
		if err != nil || len(frames) != 2 {
			t.Fatalf("size %d: %d frames, %v", size, len(frames), err)
		}
		var f protocol.Frame
		if err := protocol.DecodeFrame(frames[1], &f); err != nil {
			t.Fatal(err)
		}
		if f.T != "pub" || f.ID != 6 || f.R != "bench:r-1" || len(f.D) != size {
			t.Fatalf("size %d: %+v", size, f)
		}
		if err := protocol.ValidatePayload(f.D); err != nil {
			t.Fatal(err)
		}
		st, ok := readPayload(f.D)
		if !ok || st.phase != phaseMeasured || st.sentNS != 78 {
			t.Fatalf("size %d: %+v", size, st)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	h := NewHistogram()
	var vals []int64
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 100000 {
		v := int64(rng.ExpFloat64() * float64(2*time.Millisecond))
		vals = append(vals, v)
		h.Record(i, time.Duration(v))
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	s := h.Snapshot()
	if s.Count != 100000 || s.Max != time.Duration(vals[len(vals)-1]) || s.Min != time.Duration(vals[0]) {
		t.Fatalf("count %d min %v max %v", s.Count, s.Min, s.Max)
	}
	for _, q := range []struct {
		p   float64
		got time.Duration
	}{{0.5, s.P50}, {0.9, s.P90}, {0.99, s.P99}, {0.999, s.P999}} {
		want := float64(vals[int(q.p*float64(len(vals)))-1])
		if d := (float64(q.got) - want) / want; d < -0.001 || d > 0.02 {
			t.Errorf("p%v = %v, exact %v (%.2f %%)", q.p*100, q.got, time.Duration(want), 100*d)
		}
	}
	for _, v := range []int64{0, 1, 63, 64, 65, 127, 128, 1 << 20, 1<<40 + 12345, 1 << 50} {
		if b := bucketOf(v); bucketHigh(b) < v && b != histBucket-1 {
			t.Errorf("value %d in bucket %d whose top is %d", v, b, bucketHigh(b))
		} else if b > 0 && bucketHigh(b-1) >= v {
			t.Errorf("value %d in bucket %d, but bucket %d reaches %d", v, b, b-1, bucketHigh(b-1))
		}
	}
}

func TestBitset(t *testing.T) {
	var a, b bitset
	for _, i := range []uint32{0, 3, 64, 1000} {
		a.set(i)
	}
	b.set(3)
	b.set(1000)
	if !a.has(64) || a.has(65) || b.has(5000) || a.count() != 4 || a.andNotCount(b) != 2 || b.andNotCount(a) != 0 {
		t.Fatal("bitset arithmetic")
	}
}

func TestParseSSEMessage(t *testing.T) {
	body := make([]byte, 98)
	putStamp(body, stamp{phase: 1, pub: 3, counter: 9, sentNS: 1e18})
	js := []byte(`{"room":"r","seq":12,"user":"","conn":"c","data":"` + b64(body) + `","ts":5}`)
	seq, st, ok := parseSSEMessage(js)
	if !ok || seq != 12 || st.pub != 3 || st.counter != 9 || st.sentNS != 1e18 {
		t.Fatalf("%d %+v %v", seq, st, ok)
	}
	if _, _, ok := parseSSEMessage([]byte(`{"seq":1,"data":{"text":"hi"}}`)); ok {
		t.Error("a foreign payload was read as a bench stamp")
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestServerLatencyFromBuckets(t *testing.T) {
	text := `# HELP roomd_publish_to_write_seconds x
roomd_publish_to_write_seconds_bucket{le="0.001"} 10
roomd_publish_to_write_seconds_bucket{le="0.005"} 60
roomd_publish_to_write_seconds_bucket{le="0.025"} 109
roomd_publish_to_write_seconds_bucket{le="+Inf"} 110
roomd_publish_to_write_seconds_sum 1
`
	before := parseMetrics(bufio.NewScanner(strings.NewReader(`roomd_publish_to_write_seconds_bucket{le="0.001"} 0
roomd_publish_to_write_seconds_bucket{le="+Inf"} 0
roomd_byes_total{code="slow_consumer"} 2
`)))
	after := parseMetrics(bufio.NewScanner(strings.NewReader(text + `roomd_byes_total{code="slow_consumer"} 5
roomd_frames_out_total 300
`)))
	l := serverLatency(before.buckets, after.buckets)
	d := counterDelta(before, after)
	if d[`roomd_byes_total{code="slow_consumer"}`] != 3 || d["roomd_frames_out_total"] != 300 || len(d) != 2 {
		t.Errorf("counter delta %v", d)
	}
	if l.Count != 110 || l.P50 != 5 || l.P99 != 25 || l.P999 != -1 {
		t.Errorf("%+v (before %v)", l, before)
	}
}
