package bench

import (
	"crypto/tls"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// tlsURL serves the in-process node (testServer) over TLS too, with a
// certificate from WriteSelfSignedCert, and returns its http:// URL there:
// Config.TLS turns it into https://.
func tlsURL(t *testing.T) string {
	t.Helper()
	_, srv := testServer(t, nil)
	certFile, keyFile, err := WriteSelfSignedCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{kp}}
	hs.StartTLS()
	t.Cleanup(hs.Close)
	return strings.Replace(hs.URL, "https://", "http://", 1)
}

// A fan-out and a connection storm over TLS: every message arrives, and
// every connection opens.
func TestOverTLS(t *testing.T) {
	t.Parallel()
	url := tlsURL(t)
	c := quick(url, "fanout")
	c.Subs, c.Rate, c.TLS = 5, 50, true
	res := run(t, c)
	checkClean(t, res)
	if !res.Params.TLS || !strings.HasPrefix(res.Params.URLs[0], "https://") {
		t.Errorf("params %+v, want TLS", res.Params)
	}

	c = quick(url, "connect")
	c.Conns, c.Rooms, c.Duration, c.TLS = 30, 3, 100*time.Millisecond, true
	res = run(t, c)
	if cs := res.Connect; cs == nil || cs.Opened != 30 || cs.Failed != 0 || cs.PerS <= 0 {
		t.Fatalf("connect over TLS: %+v, errors %v", cs, res.Errors)
	}

	// Without --tls the same URL is plain HTTP to a TLS port: nothing opens.
	if c.URLs[0] != url {
		t.Fatalf("Run changed the caller's URLs: %v", c.URLs)
	}
	c.TLS = false
	c.DialTimeout = 2 * time.Second
	if res = run(t, c); res.Connect == nil || res.Connect.Opened != 0 {
		t.Fatalf("plain dials to a TLS port: %+v", res.Connect)
	}
}
