package main

import (
	"fmt"
	"os"

	"github.com/roomd/roomd/internal/bench"
)

// tlsTargets runs the TLS targets: a node serving a self-signed certificate
// (bench.WriteSelfSignedCert), the bench dialling it with --tls. The
// fan-out's ratio comes from plain and TLS runs alternated, twice, both
// with goroutine readers on the bench's side (pollers read plain sockets
// only), so that the two differ only in TLS.
func (r *runner) tlsTargets(want func(string) bool, add func(...row)) {
	if r.tls == nil {
		dir, err := os.MkdirTemp("", "roomd-targets-tls")
		if err != nil {
			fatal(err)
		}
		defer os.RemoveAll(dir)
		cert, key, err := bench.WriteSelfSignedCert(dir)
		if err != nil {
			fatal(err)
		}
		r.tls = []string{"--tls-cert", cert, "--tls-key", key}
		defer func() { r.tls = nil }()
	}
	if want("tls-fanout") {
		args := []string{"--subs", "1000", "--rate", "100", "--duration", "10s", "--warmup", "2s", "--goroutine-readers"}
		var plain, tls [2]*bench.Result
		for i := range 2 {
			plain[i] = r.run(fmt.Sprintf("tls-fanout-plain-%d", i+1), nil, args...)
			tls[i] = r.run(fmt.Sprintf("tls-fanout-tls-%d", i+1), r.tls, append(args, "--tls")...)
		}
		fig, ok := "", true
		for i := range 2 {
			p, t := plain[i].Server.CPUMicrosPerDelivery, tls[i].Server.CPUMicrosPerDelivery
			ratio := t / p
			ok = ok && p > 0 && ratio <= 1.3 && tls[i].Lost == 0
			if i > 0 {
				fig += "; "
			}
			fig += fmt.Sprintf("%s TLS, %s plain: %.2f ×", us(t), us(p), ratio)
		}
		add(row{"fan-out 1 × 1,000 at 100 msg/s over TLS: server CPU per delivery ≤ 1.3 × plaintext (alternated, twice)", fig, check(ok)},
			row{"… p99 over TLS, plaintext (read by goroutines; reported)",
				fmt.Sprintf("%s, %s; %s, %s", ms(tls[0].Latency.P99), ms(plain[0].Latency.P99), ms(tls[1].Latency.P99), ms(plain[1].Latency.P99)), ""})
	}
	if want("tls-idle") {
		res := r.run("tls-idle", r.tls, "--scenario", "connect", "--conns", "9000", "--rooms", "100", "--duration", "40s", "--tls")
		b := res.Server.RSSPerConnAfterHoldBytes
		add(row{"9,000 idle TLS connections in 100 rooms: RSS ≤ 10 KiB each", fmt.Sprintf("%.0f B", b), check(b > 0 && b <= 10240 && res.ConnectionsFailed == 0)})
	}
	if want("tls-connect") {
		storm := []string{"--scenario", "connect", "--conns", "9000", "--rooms", "9000", "--duration", "1s"}
		plain := r.run("tls-connect-plain", nil, storm...)
		tls := r.run("tls-connect-tls", r.tls, append(storm, "--tls")...)
		add(row{"connect rate (hello+join) over TLS (reported; plaintext beside)",
			fmt.Sprintf("%.0f/s over TLS, %.0f/s plain", tls.Connect.PerS, plain.Connect.PerS), ""})
	}
}
