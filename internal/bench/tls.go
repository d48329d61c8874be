package bench

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/roomd/roomd/internal/selfcert"
)

// A bench over TLS (Config.TLS) dials https:// and wss:// and does not
// verify the node's certificate: the node under test serves a self-signed
// one, such as WriteSelfSignedCert writes. Nothing but a bench skips the
// check.

// tlsConfig is the bench clients' TLS configuration: nil unless Config.TLS.
func (r *runner) tlsConfig() *tls.Config {
	if !r.cfg.TLS {
		return nil
	}
	return &tls.Config{InsecureSkipVerify: true} // a bench's self-signed node only
}

// toTLS turns a node's http:// or ws:// URL into its https:// or wss:// one.
func toTLS(u string) string {
	switch {
	case strings.HasPrefix(u, "http://"):
		return "https://" + u[len("http://"):]
	case strings.HasPrefix(u, "ws://"):
		return "wss://" + u[len("ws://"):]
	}
	return u
}

// isTLS reports whether a node URL is dialled over TLS.
func isTLS(u string) bool { return strings.HasPrefix(httpBase(u), "https://") }

// WriteSelfSignedCert writes a fresh self-signed certificate for 127.0.0.1
// and localhost, valid for a day, and its key, to dir (cert.pem, key.pem),
// for a node that a bench measures over TLS (roomd --tls-cert, --tls-key).
func WriteSelfSignedCert(dir string) (certFile, keyFile string, err error) {
	certPEM, keyPEM, _, err := selfcert.New("roomd bench", 24*time.Hour)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}
