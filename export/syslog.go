package export

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/vigil-iot/vigil"
)

// SyslogOptions configure a syslog sink.
type SyslogOptions struct {
	// URL is "tcp://host:port" or "tls://host:port".
	URL string
	// TLS configures the TLS connection (default: the system roots, the
	// URL's host as server name).
	TLS *tls.Config
	// Hostname in the messages' header (default "-").
	Hostname string
	// Timeout bounds a connection and a write (default 10s).
	Timeout time.Duration
}

// Syslog sends each alert as one RFC 5424 message (facility authpriv,
// severity from the alert's, app-name "vigil", msgid "alert", the JSON
// document as MSG) over one TCP or TLS connection, octet-counted (RFC
// 6587 / RFC 5425 framing). Syslog has no acknowledgement: a message
// counts as accepted when the write to the connection succeeded.
type Syslog struct {
	o    SyslogOptions
	addr string
	conn net.Conn
}

var _ Sink = (*Syslog)(nil)

// NewSyslog checks the options; it connects on the first Send.
func NewSyslog(o SyslogOptions) (*Syslog, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "tcp" && u.Scheme != "tls") || u.Port() == "" {
		return nil, fmt.Errorf("cannot use syslog URL %q: want tcp://host:port or tls://host:port", o.URL)
	}
	if u.Scheme == "tls" {
		if o.TLS == nil {
			o.TLS = &tls.Config{}
		} else {
			o.TLS = o.TLS.Clone()
		}
		if o.TLS.ServerName == "" {
			o.TLS.ServerName = u.Hostname()
		}
	} else {
		o.TLS = nil
	}
	if o.Hostname == "" {
		o.Hostname = "-"
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	return &Syslog{o: o, addr: u.Host}, nil
}

// syslogSeverity maps alert severities to syslog severities.
var syslogSeverity = map[vigil.Severity]int{
	vigil.SeverityCritical: 2, vigil.SeverityHigh: 3, vigil.SeverityMedium: 4,
	vigil.SeverityLow: 5, vigil.SeverityInfo: 6,
}

// rfc5424Time is RFC 3339 with at most 6 fractional digits (RFC 5424 TIME-SECFRAC).
const rfc5424Time = "2006-01-02T15:04:05.999999Z07:00"

// Frame returns one alert as an octet-counted RFC 5424 message.
func Frame(d Doc, hostname string) []byte {
	sev, ok := syslogSeverity[d.Severity]
	if !ok {
		sev = 5
	}
	const authpriv = 10
	msg := fmt.Sprintf("<%d>1 %s %s vigil - alert - %s", authpriv*8+sev, d.Time.UTC().Format(rfc5424Time), hostname, d.JSON)
	return []byte(strconv.Itoa(len(msg)) + " " + msg)
}

// Send writes docs in order. On a failed write the connection is closed
// and the docs from the failed one on are to retry (those before were
// written).
func (s *Syslog) Send(ctx context.Context, docs []Doc) error {
	if s.conn == nil {
		d := net.Dialer{Timeout: s.o.Timeout}
		var c net.Conn
		var err error
		if s.o.TLS != nil {
			c, err = (&tls.Dialer{NetDialer: &d, Config: s.o.TLS}).DialContext(ctx, "tcp", s.addr)
		} else {
			c, err = d.DialContext(ctx, "tcp", s.addr)
		}
		if err != nil {
			return fmt.Errorf("cannot reach syslog collector %s: %w", s.addr, err)
		}
		s.conn = c
	}
	var buf bytes.Buffer
	for i, d := range docs {
		buf.Reset()
		buf.Write(Frame(d, s.o.Hostname))
		s.conn.SetWriteDeadline(time.Now().Add(s.o.Timeout))
		if _, err := s.conn.Write(buf.Bytes()); err != nil {
			s.conn.Close()
			s.conn = nil
			if i == 0 {
				return fmt.Errorf("cannot write to syslog collector %s: %w", s.addr, err)
			}
			ie := &ItemErrors{}
			for j := i; j < len(docs); j++ {
				ie.Retry = append(ie.Retry, j)
			}
			return ie
		}
	}
	return nil
}

// Close closes the connection.
func (s *Syslog) Close() error {
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}
