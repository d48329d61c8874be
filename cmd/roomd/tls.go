package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// certStore holds the node's TLS certificate and swaps it atomically on
// reload: a handshake uses either the old certificate or the new one, and a
// failed reload leaves the old one in force.
type certStore struct {
	certFile, keyFile string

	mu  sync.Mutex // one reload at a time; handshakes never take it
	cur atomic.Pointer[tls.Certificate]
}

// newCertStore loads the key pair.
func newCertStore(certFile, keyFile string) (*certStore, error) {
	s := &certStore{certFile: certFile, keyFile: keyFile}
	if _, err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// reload re-reads the key pair and, if it is valid, puts it in force. It
// returns the new certificate's leaf.
func (s *certStore) reload() (*x509.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kp, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: loading %s and %s: %w", s.certFile, s.keyFile, err)
	}
	if kp.Leaf == nil {
		if kp.Leaf, err = x509.ParseCertificate(kp.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls: %s: %w", s.certFile, err)
		}
	}
	s.cur.Store(&kp)
	return kp.Leaf, nil
}

// leaf is the certificate in force.
func (s *certStore) leaf() *x509.Certificate { return s.cur.Load().Leaf }

func (s *certStore) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := s.cur.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("tls: no certificate loaded")
}

// tlsConfig serves the store's certificate, TLS 1.2 at least. HTTP/2 is
// offered for the HTTP API and SSE; WebSocket clients use HTTP/1.1, since
// Go's HTTP/2 server does not advertise extended CONNECT (RFC 8441).
func (s *certStore) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.getCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}

// expiresSoon reports whether a certificate expires within a week.
func expiresSoon(c *x509.Certificate, now time.Time) bool {
	return c.NotAfter.Before(now.Add(7 * 24 * time.Hour))
}
