package bench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
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
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "roomd bench"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}
