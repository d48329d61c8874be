// Command targets runs the single-node targets of docs/BENCHMARKS.md (the
// ones `roomd bench` is held to) once each, every run against a fresh roomd
// measured through --pid, and prints each figure beside its target:
//
//	go build -o bin/roomd ./cmd/roomd && go run ./scripts/targets
//
// (make targets). About four minutes on a 2-core machine. -out keeps every
// run's JSON; -only runs some of them (floor, fanout100, fanout300, rates,
// idle, overload, overload-admission, node-rates, node-overload,
// api-overload, recovery, connect, sse, sseidle, presence, joinstorm,
// tls-fanout, tls-idle, tls-connect); -best and -node-best skip the
// searches for the highest rates (one room of 1,000; 100 rooms × 100). The floor run (no server: the bench writes
// to its own subscribers) shows what the kernel alone costs per delivery on
// this machine, under the fan-out's CPU and latency.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/roomd/roomd/internal/bench"
)

// serverFlags raise the per-connection inbound limits, so that a bench
// publisher is never the one throttled.
var serverFlags = []string{"--addr", "127.0.0.1:0", "--log-format", "json",
	"--frame-rate", "100000", "--frame-burst", "200000", "--byte-rate", "64MiB",
	"--max-pending-per-addr", "100000", "--conn-rate-per-addr", "100000"}

type runner struct {
	roomd string
	out   string   // "" keeps no JSON
	tls   []string // roomd's --tls-cert and --tls-key, once made (tls.go)
}

func main() {
	r := runner{}
	flag.StringVar(&r.roomd, "roomd", "bin/roomd", "the roomd binary to measure and to bench with")
	flag.StringVar(&r.out, "out", "", "directory to keep each run's JSON in")
	only := flag.String("only", "", "comma-separated targets to run (default all)")
	given := flag.Int("best", 0, "the highest sustainable rate the overload targets start from, instead of searching for it (rates)")
	nodeGiven := flag.Int("node-best", 0, "the highest sustainable rate of 100 rooms × 100 that node-overload starts from, instead of searching for it (node-rates)")
	flag.Parse()
	want := func(name string) bool {
		return *only == "" || strings.Contains(","+*only+",", ","+name+",")
	}
	if r.out != "" {
		if err := os.MkdirAll(r.out, 0o755); err != nil {
			fatal(err)
		}
	}
	var rows []row
	add := func(rs ...row) {
		rows = append(rows, rs...)
		for _, x := range rs {
			fmt.Fprintf(os.Stderr, "  %s: %s %s\n", x.target, x.figure, x.verdict)
		}
	}
	fanout := []string{"--subs", "1000", "--duration", "10s", "--warmup", "2s"}
	if want("floor") {
		res := r.bench("floor", append([]string{"--scenario", "floor", "--rate", "100"}, fanout...)...)
		add(row{"floor (no server, one write per delivery) 1 × 1,000 at 100 msg/s (reported)",
			fmt.Sprintf("%s per write, p99 %s", us(res.Floor.CPUMicrosPerWrite), ms(res.Latency.P99)), ""})
	}
	if want("fanout100") {
		res := r.run("fanout100", nil, append(fanout, "--rate", "100")...)
		add(row{"fan-out 1 × 1,000 at 100 msg/s: p99 ≤ 10 ms", ms(res.Latency.P99), check(res.Latency.P99 <= 10)},
			row{"… server CPU ≤ 4 µs per delivery", us(res.Server.CPUMicrosPerDelivery), check(res.Server.CPUMicrosPerDelivery <= 4)})
	}
	if want("fanout300") {
		res := r.run("fanout300", nil, append(fanout, "--rate", "300")...)
		add(row{"same at 300 msg/s: ≥ 98 % delivered, p99 ≤ 25 ms",
			fmt.Sprintf("%.2f %%, %s", res.DeliveredPct, ms(res.Latency.P99)), check(res.DeliveredPct >= 98 && res.Latency.P99 <= 25)})
	}
	best := *given
	if best == 0 && (want("rates") || want("overload") || want("overload-admission") || want("node-overload") || want("api-overload") || want("recovery")) {
		for _, rate := range []int{500, 750, 1000, 1500, 2000, 2500, 3000, 4000} {
			res := r.run("rate"+strconv.Itoa(rate), nil, append(fanout, "--rate", strconv.Itoa(rate), "--pubs", strconv.Itoa(1+rate/2000))...)
			if res.Latency.P99 > 50 || res.DeliveredPct < 99.9 {
				break
			}
			best = rate
		}
		add(row{"highest rate with p99 ≤ 50 ms (reported)", fmt.Sprintf("%d msg/s", best), ""})
	}
	if want("idle") {
		res := r.run("idle", nil, "--scenario", "connect", "--conns", "9000", "--rooms", "100", "--duration", "40s")
		b := res.Server.RSSPerConnAfterHoldBytes
		add(row{"9,000 idle connections in 100 rooms: RSS ≤ 8 KiB each", fmt.Sprintf("%.0f B", b), check(b > 0 && b <= 8192)})
	}
	if want("overload") && best > 0 {
		// 3× the highest sustained rate offered, the room accepting half of
		// it (docs/OPERATIONS.md: refusals and cuts need headroom too).
		offered, accepted := 3*best, best/2
		res := r.run("overload", []string{"--room-publish-rate", strconv.Itoa(accepted)},
			"--subs", "1000", "--pubs", strconv.Itoa(2+offered/2000), "--rate", strconv.Itoa(offered),
			"--non-readers", "10", "--duration", "30s", "--warmup", "2s", "--drain", "5s")
		nr := res.NonReaders
		add(row{fmt.Sprintf("overload %d msg/s (room accepts %d), 10 %% non-readers: readers' p99 ≤ 50 ms", offered, accepted),
			ms(res.Latency.P99), check(res.Latency.P99 <= 50)},
			row{"… non-readers cut with slow_consumer", fmt.Sprintf("%d of %d", nr.CutSlowConsumer, nr.Count), check(nr.Count > 0 && nr.CutSlowConsumer == nr.Count)},
			row{"… server RSS bounded (max, end)", fmt.Sprintf("%.0f MiB, %.0f MiB", mib(res.Server.RSSMaxBytes), mib(res.Server.RSSEndBytes)), ""})
	}
	if want("overload-admission") && best > 0 {
		// The same overload with default settings: no room_publish_rate,
		// admission by measured delay alone (docs/OPERATIONS.md, "Overload").
		offered := 3 * best
		res := r.run("overload-admission", nil,
			"--subs", "1000", "--pubs", strconv.Itoa(2+offered/2000), "--rate", strconv.Itoa(offered),
			"--non-readers", "10", "--duration", "30s", "--warmup", "2s", "--drain", "5s")
		nr, ack := res.NonReaders, res.AckLatency
		if ack == nil {
			ack = &bench.LatencyMS{}
		}
		readLag := 0.0
		if res.ReadLag != nil {
			readLag = res.ReadLag.P99
		}
		add(row{fmt.Sprintf("overload %d msg/s, default settings, 10 %% non-readers: readers' p99 ≤ 100 ms (arrival; bench read lag p99 beside)", offered),
			fmt.Sprintf("%s (+%s)", ms(res.Latency.P99), ms(readLag)), check(res.Latency.P99 <= 100)},
			row{"… every publish answered: 0 unanswered, ok p99 ≤ 1 s", fmt.Sprintf("%d unanswered, %s", res.Unacked, ms(ack.P99)), check(res.Unacked == 0 && ack.P99 <= 1000)},
			row{fmt.Sprintf("… acknowledged ≥ 70 %% of %d msg/s", best), fmt.Sprintf("%.0f msg/s (%.0f %%)", res.PublishedPerS, 100*res.PublishedPerS/float64(best)), check(res.PublishedPerS >= 0.7*float64(best))},
			row{"… non-readers cut with slow_consumer", fmt.Sprintf("%d of %d", nr.CutSlowConsumer, nr.Count), check(nr.Count > 0 && nr.CutSlowConsumer == nr.Count)},
			row{"… server RSS bounded (max, end)", fmt.Sprintf("%.0f MiB, %.0f MiB", mib(res.Server.RSSMaxBytes), mib(res.Server.RSSEndBytes)), ""})
	}
	// The whole node's own rate, searched in its own layout (100 rooms ×
	// 100, a publisher each): a message of a small room costs more than a
	// tenth of a 1,000-reader room's (a write per reader each, where the
	// big room's writes carry many messages), so it does not follow from
	// the one room's.
	nodeBest := *nodeGiven
	if nodeBest == 0 && (want("node-rates") || want("node-overload")) {
		for _, rate := range []int{100, 200, 300, 400, 600, 800, 1200, 1600, 2400, 3200, 4800} {
			res := r.run("node-rate"+strconv.Itoa(rate), nil,
				"--rooms", "100", "--subs", "100", "--pubs", "1", "--rate", strconv.Itoa(rate), "--duration", "10s", "--warmup", "2s")
			if res.Latency.P99 > 50 || res.DeliveredPct < 99.9 {
				break
			}
			nodeBest = rate
		}
		add(row{"100 rooms × 100: highest rate with p99 ≤ 50 ms (reported)", fmt.Sprintf("%d msg/s", nodeBest), ""})
	}
	if want("node-overload") && nodeBest > 0 {
		offered := 3 * nodeBest
		res := r.run("node-overload", nil,
			"--rooms", "100", "--subs", "100", "--pubs", "1", "--rate", strconv.Itoa(offered),
			"--quiet-rate", "10", "--duration", "20s", "--warmup", "2s", "--drain", "5s")
		q := res.Quiet
		if q == nil {
			q = &bench.QuietStats{}
		}
		add(row{fmt.Sprintf("whole node overloaded: 100 rooms × 100 at %d msg/s, default settings: readers' p99 ≤ 100 ms", offered),
			ms(res.Latency.P99), check(res.Latency.P99 <= 100)},
			row{"… 0 unanswered; acknowledged (reported)", fmt.Sprintf("%d unanswered, %.0f msg/s", res.Unacked, res.PublishedPerS), check(res.Unacked == 0)},
			row{"… a room of 100 at 10 msg/s among them: every publish accepted", fmt.Sprintf("%d ok, %d refused, %d unanswered", q.Published, q.Rejected, q.Unacked), check(q.Published > 0 && q.Rejected == 0 && q.Unacked == 0)})
	}
	if want("api-overload") && best > 0 {
		// One room overloaded by WebSocket publishers, 100 msg/s more
		// through the HTTP API.
		offered := 3 * best
		res := r.run("api-overload", nil,
			"--subs", "1000", "--pubs", strconv.Itoa(2+offered/2000), "--rate", strconv.Itoa(offered),
			"--api-rate", "100", "--duration", "10s", "--warmup", "2s")
		a := res.API
		if a == nil {
			a = &bench.APIStats{}
		}
		add(row{"API publishes under overload: refused with 429/503 + Retry-After, none hung (≤ 10 s)",
			fmt.Sprintf("%d sent: %d ok, %d refused with Retry-After, %d without, %d other, %d unanswered; longest %.0f ms", a.Sent, a.OK, a.Refused, a.NoRetryAfter, a.Other, a.Failed, a.MaxMS),
			check(a.Sent > 0 && a.Refused > 0 && a.NoRetryAfter == 0 && a.Other == 0 && a.Failed == 0)})
	}
	if want("recovery") && best > 0 {
		// 3× the rate, then half of it on the same node: the second run's
		// 2 s warmup is the time refusals have to stop.
		offered, half := 3*best, best/2
		res := r.runSeq("recovery", nil,
			[]string{"--subs", "1000", "--pubs", strconv.Itoa(2 + offered/2000), "--rate", strconv.Itoa(offered), "--duration", "10s", "--warmup", "2s"},
			[]string{"--subs", "1000", "--pubs", "1", "--rate", strconv.Itoa(half), "--duration", "10s", "--warmup", "2s"},
			[]string{"--subs", "1000", "--pubs", "1", "--rate", strconv.Itoa(half), "--duration", "10s", "--warmup", "2s"})
		load, after, fresh := res[0], res[1], res[2]
		add(row{fmt.Sprintf("recovery: %d msg/s, then %d on the same node: no refusal after 2 s", offered, half),
			fmt.Sprintf("%d refused under load, %d after", load.Rejected, after.Rejected), check(load.Rejected > 0 && after.Rejected == 0 && after.Unacked == 0)},
			row{"… p99 back to its unloaded value (a third run, same node)", fmt.Sprintf("%s after, %s unloaded", ms(after.Latency.P99), ms(fresh.Latency.P99)),
				check(after.Latency.P99 <= 1.5*fresh.Latency.P99+5)})
	}
	if want("connect") {
		res := r.run("connect", nil, "--scenario", "connect", "--conns", "9000", "--rooms", "9000", "--duration", "1s")
		add(row{"connect: ≥ 5,000 hello+join/s", fmt.Sprintf("%.0f/s", res.Connect.PerS), check(res.Connect.PerS >= 5000)})
	}
	if want("presence") {
		storm := []string{"--scenario", "connect", "--conns", "9000", "--rooms", "100", "--duration", "1s"}
		on := r.run("presence-on", nil, storm...)
		off := r.run("presence-off", []string{"--presence=false"}, storm...)
		ratio := on.OpenSeconds / off.OpenSeconds
		add(row{"9,000 connections into 100 rooms of 90: presence on ≤ 1.3 × off",
			fmt.Sprintf("%.2f s on, %.2f s off: %.2f ×", on.OpenSeconds, off.OpenSeconds, ratio), check(on.ConnectionsFailed == 0 && ratio <= 1.3)})
	}
	if want("joinstorm") {
		res := r.run("joinstorm", nil, "--scenario", "joinstorm", "--subs", "1000", "--join-over", "1s", "--rate", "100",
			"--duration", "10s", "--dial-concurrency", "64")
		ps := res.Presence
		if ps == nil {
			ps = &bench.PresenceStats{}
		}
		add(row{"1,000 members join one room within 1 s, then 100 msg/s: p99 ≤ 50 ms from the first message",
			fmt.Sprintf("%s (joined in %.2f s)", ms(res.Latency.P99), res.OpenSeconds), check(res.Latency.P99 <= 50 && res.Lost == 0)},
			row{"… every member's presence view equals the room's", fmt.Sprintf("%d of %d, %d pres frames", ps.Matching, ps.Members, ps.Frames),
				check(ps.Members == 1000 && ps.Matching == ps.Members)})
	}
	if want("tls-fanout") || want("tls-idle") || want("tls-connect") {
		r.tlsTargets(want, add)
	}
	if want("sse") {
		res := r.run("sse", nil, "--scenario", "sse", "--observers", "2000", "--rate", "50", "--duration", "10s", "--warmup", "2s", "--read-latency")
		fig := ms(res.Latency.P99)
		if m := res.Machine; m != nil {
			// Latency follows the machine's other work: say how much there was.
			fig += fmt.Sprintf(" (other processes: %.2f of %d cores)", m.Others, m.Cores)
		}
		add(row{"sse: 2,000 observers at 50 msg/s, p99 at the bench's read ≤ 25 ms", fig, check(res.Latency.P99 <= 25 && res.Lost == 0)},
			row{"… server CPU per delivery (reported)", us(res.Server.CPUMicrosPerDelivery), ""})
	}
	if want("sseidle") {
		res := r.run("sseidle", nil, "--scenario", "sseidle", "--observers", "5000", "--rooms", "10", "--duration", "20s")
		b := res.Server.RSSPerConnAfterHoldBytes
		add(row{"5,000 idle SSE observers in 10 rooms: RSS ≤ 6 KiB each", fmt.Sprintf("%.0f B", b), check(b > 0 && b <= 6144 && res.ConnectionsFailed == 0)})
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "target\tfigure\t\n")
	for _, x := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", x.target, x.figure, x.verdict)
	}
	_ = tw.Flush()
}

type row struct{ target, figure, verdict string }

func check(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func ms(v float64) string      { return fmt.Sprintf("%.2f ms", v) }
func us(v float64) string      { return fmt.Sprintf("%.2f µs", v) }
func mib(b int64) float64      { return float64(b) / (1 << 20) }
func fatal(err error)          { fmt.Fprintln(os.Stderr, "targets:", err); os.Exit(1) }
func (r *runner) log(s string) { fmt.Fprintln(os.Stderr, s) }

// run starts a fresh server with extra flags, runs `roomd bench --json`
// against it with args, and returns the result; any failure ends the
// command, since a figure that was not taken cannot be compared.
func (r *runner) run(name string, serverArgs []string, args ...string) *bench.Result {
	return r.runSeq(name, serverArgs, args)[0]
}

// runSeq is run with several benches, one after the other, against the
// same server.
func (r *runner) runSeq(name string, serverArgs []string, runs ...[]string) []*bench.Result {
	srv := exec.Command(r.roomd, append(append([]string{}, serverFlags...), serverArgs...)...)
	stderr, err := srv.StderrPipe()
	if err != nil {
		fatal(err)
	}
	if err := srv.Start(); err != nil {
		fatal(err)
	}
	defer func() {
		_ = srv.Process.Kill()
		_ = srv.Wait()
	}()
	addr, err := listeningAddr(stderr)
	if err != nil {
		fatal(fmt.Errorf("%s: roomd did not start: %w", name, err))
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()

	var out []*bench.Result
	for i, args := range runs {
		n := name
		if len(runs) > 1 {
			n = fmt.Sprintf("%s-%d", name, i+1)
		}
		res := r.bench(n, append([]string{"--url", "http://" + addr, "--pid", strconv.Itoa(srv.Process.Pid)}, args...)...)
		if res.Server == nil {
			fatal(fmt.Errorf("%s: the result lacks the server's figures", n))
		}
		out = append(out, res)
	}
	return out
}

// bench runs `roomd bench --json` with args and returns the result, with
// the parts a target reads never nil.
func (r *runner) bench(name string, args ...string) *bench.Result {
	r.log("== " + name + ": roomd bench " + strings.Join(args, " "))
	cmdArgs := append([]string{"bench", "--json"}, args...)
	var out bytes.Buffer
	b := exec.Command(r.roomd, cmdArgs...)
	b.Stdout, b.Stderr = &out, os.Stderr
	if err := b.Run(); err != nil {
		fatal(fmt.Errorf("%s: roomd bench: %w", name, err))
	}
	if r.out != "" {
		if err := os.WriteFile(filepath.Join(r.out, name+".json"), out.Bytes(), 0o644); err != nil {
			fatal(err)
		}
	}
	var res bench.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		fatal(fmt.Errorf("%s: %w", name, err))
	}
	if res.Latency == nil && res.Connect == nil {
		fatal(fmt.Errorf("%s: the result lacks the latency figures", name))
	}
	if m := res.Machine; m != nil {
		r.log(fmt.Sprintf("   cores busy: server (floor: writer) %.2f, bench %.2f, others %.2f of %d", m.Server, m.Bench, m.Others, m.Cores))
	}
	if res.Latency == nil {
		res.Latency = &bench.LatencyMS{}
	}
	if res.NonReaders == nil {
		res.NonReaders = &bench.NonReaderStats{}
	}
	if res.Connect == nil {
		res.Connect = &bench.ConnectStats{}
	}
	if res.Floor == nil {
		res.Floor = &bench.FloorStats{}
	}
	return &res
}

// listeningAddr reads roomd's JSON log until its "listening" line, within
// 10 s, and returns the address.
func listeningAddr(r io.Reader) (string, error) {
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var l struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "listening" && l.Addr != "" {
				found <- l.Addr
				return
			}
		}
		close(found)
	}()
	select {
	case a, ok := <-found:
		if !ok {
			return "", errors.New("it exited")
		}
		return a, nil
	case <-time.After(10 * time.Second):
		return "", errors.New("no listening line in 10 s")
	}
}
