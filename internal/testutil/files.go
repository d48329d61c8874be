package testutil

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/selfcert"
)

// WriteFile writes content to a file name in a fresh temporary directory of
// the test, and returns its path.
func WriteFile(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// WriteCert writes a fresh self-signed certificate for 127.0.0.1 and its key
// to certFile and keyFile, and returns the certificate.
func WriteCert(t testing.TB, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	certPEM, keyPEM, leaf, err := selfcert.New("roomd test", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Write the key first and the certificate last, each by rename, as a
	// certificate manager would.
	WriteAtomic(t, keyFile, keyPEM)
	WriteAtomic(t, certFile, certPEM)
	return leaf
}

// Cert makes a fresh self-signed certificate for 127.0.0.1, in memory, and
// returns it with a pool that trusts it (a client's RootCAs).
func Cert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	certPEM, keyPEM, leaf, err := selfcert.New("roomd test", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return kp, pool
}

func WriteAtomic(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
