package web

import (
	"crypto/tls"
	"testing"
)

// TestListenTLSAEADOnly: a TLS 1.2 client that offers only CBC suites
// (with SHA-1 or SHA-256 MACs) cannot connect; one offering an ECDHE AEAD
// suite can.
func TestListenTLSAEADOnly(t *testing.T) {
	s, ca, _ := listenTLS(t)
	dial := func(suites ...uint16) error {
		c, err := tls.Dial("tcp", s.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1",
			MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: suites})
		if err == nil {
			c.Close()
		}
		return err
	}
	for _, cs := range tls.InsecureCipherSuites() {
		if err := dial(cs.ID); err == nil {
			t.Errorf("TLS 1.2 with %s was accepted", cs.Name)
		}
	}
	for _, cs := range tls.CipherSuites() {
		aead := false
		for _, id := range CipherSuites {
			aead = aead || id == cs.ID
		}
		err := dial(cs.ID)
		switch {
		case aead && err != nil && cs.SupportedVersions[0] <= tls.VersionTLS12:
			// The suite needs the other key type (RSA or ECDSA) than the
			// server's certificate: one of each pair must connect, below.
		case !aead && err == nil:
			t.Errorf("TLS 1.2 with %s was accepted", cs.Name)
		}
	}
	if err := dial(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256); err != nil {
		t.Fatalf("TLS 1.2 with ECDHE AES-GCM: %v", err)
	}
	if err := dial(tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256); err != nil {
		t.Fatalf("TLS 1.2 with ECDHE ChaCha20-Poly1305: %v", err)
	}
}
