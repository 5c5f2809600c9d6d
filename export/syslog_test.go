package export

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tlsListener listens on loopback with a self-signed certificate for
// "localhost" and returns the client config that trusts it.
func tlsListener(t *testing.T) (net.Listener, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, &tls.Config{RootCAs: pool}
}

// readFrame reads one octet-counted syslog frame (RFC 6587 3.4.1).
func readFrame(r *bufio.Reader) (string, error) {
	n, err := r.ReadString(' ')
	if err != nil {
		return "", err
	}
	size, err := strconv.Atoi(strings.TrimSuffix(n, " "))
	if err != nil || size <= 0 {
		return "", fmt.Errorf("bad frame length %q", n)
	}
	b := make([]byte, size)
	_, err = io.ReadFull(r, b)
	return string(b), err
}

func TestSyslogTLS(t *testing.T) {
	ln, cfg := tlsListener(t)
	got := make(chan string, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					m, err := readFrame(r)
					if err != nil {
						return
					}
					got <- m
				}
			}()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	sink, err := NewSyslog(SyslogOptions{URL: fmt.Sprintf("tls://localhost:%d", port), TLS: cfg, Hostname: "vigil-1"})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := New(sink, Options{Name: "syslog", Encoder: OCSF, Sleep: (&noSleep{}).sleep})
	defer sink.Close()
	alerts := testAlerts("a", "b")
	alerts[1].Created = alerts[1].Created.Add(123456789) // nanoseconds: RFC 5424 keeps 6 digits
	if err := e.Handle(context.Background(), alerts); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		m := <-got
		// <83> is authpriv.err: a high alert.
		prefix := []string{"<83>1 2026-03-01T10:00:00Z vigil-1 vigil - alert - ", "<83>1 2026-03-01T10:00:01.123456Z vigil-1 vigil - alert - "}[i]
		if !strings.HasPrefix(m, prefix) {
			t.Fatalf("message %q, want prefix %q", m, prefix)
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(strings.TrimPrefix(m, prefix)), &doc); err != nil {
			t.Fatalf("MSG is not JSON: %v", err)
		}
		if doc["class_uid"] != float64(2004) {
			t.Errorf("doc %v", doc)
		}
	}
}

func TestSyslogUntrustedCertificate(t *testing.T) {
	ln, _ := tlsListener(t)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	sink, _ := NewSyslog(SyslogOptions{URL: "tls://" + ln.Addr().String()})
	err := sink.Send(context.Background(), []Doc{{ID: "x", JSON: []byte("{}")}})
	if err == nil {
		t.Fatal("sent to a collector with an untrusted certificate")
	}
	if _, err := NewSyslog(SyslogOptions{URL: "udp://h:514"}); err == nil {
		t.Error("NewSyslog accepted udp")
	}
}
