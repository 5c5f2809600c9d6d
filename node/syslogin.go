package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/ingest"
	"github.com/vigil-iot/vigil/ingest/syslog"
	"github.com/vigil-iot/vigil/ingest/weblog"
)

// SyslogInConfig is the `syslog` section: the syslog receiver
// (ingest/syslog, docs/sources.md). Absent, or with no address, the
// server receives no syslog.
//
//	syslog:
//	  udp: 0.0.0.0:514
//	  tcp: 0.0.0.0:601
//	  tls: 0.0.0.0:6514      # the server's certificate unless cert_file/key_file
//	  rate: 2000             # messages/s per source address (0: no limit)
type SyslogInConfig struct {
	UDP string `yaml:"udp"`
	TCP string `yaml:"tcp"`
	TLS string `yaml:"tls"`
	// CertFile and KeyFile are the TLS listener's certificate; default:
	// the server's own (issued by Vigil's CA, pki/ca.crt).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Rate and Burst limit each source address (messages/s; burst
	// default 1000); 0 is no limit.
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
	// Queue bounds the messages parsed and not yet on the bus (default
	// 65536); MaxMessage a message in bytes (default 65536).
	Queue      int `yaml:"queue"`
	MaxMessage int `yaml:"max_message"`
	// Timezone of RFC 3164 timestamps, which carry none (default UTC).
	Timezone string `yaml:"timezone"`
}

// syslogPublisher turns the access log lines that web servers send over
// syslog into web events (nginx's access_log syslog:server=...), removes
// credentials from events (the server's redaction rules, as for every
// other source), and hands them to the bus.
type syslogPublisher struct {
	r   *ingest.Redactor
	pub syslog.Publisher
}

// webServerTags are the syslog tags of web servers' access logs.
var webServerTags = map[string]bool{"nginx": true, "httpd": true, "apache": true, "apache2": true, "haproxy": true, "caddy": true}

func (p syslogPublisher) PublishEvents(ctx context.Context, evs []vigil.Event) error {
	for i := range evs {
		if name, _ := evs[i].Fields["process.name"].(string); webServerTags[name] {
			evs[i] = webFromSyslog(evs[i])
		}
	}
	p.r.Events(evs)
	return p.pub.PublishEvents(ctx, evs)
}

// webFromSyslog returns the web event of a web server's syslog message
// that is an access log line, else ev unchanged.
func webFromSyslog(ev vigil.Event) vigil.Event {
	msg, _ := ev.Fields["message"].(string)
	r, err := weblog.Parse([]byte(strings.TrimSpace(msg)))
	if err != nil {
		return ev
	}
	host, _ := ev.Fields["host.hostname"].(string)
	w := weblog.Event(&r, host)
	w.ID, w.Received, w.Provenance = ev.ID, ev.Received, ev.Provenance
	w.Fields["process.name"] = ev.Fields["process.name"]
	w.Fields["log.source.address"] = ev.Fields["log.source.address"]
	return w
}

// runSyslog receives syslog when the syslog section names an address,
// until ctx ends.
func (a *Node) runSyslog(ctx context.Context) error {
	c := a.cfg.Syslog
	if c == nil || (c.UDP == "" && c.TCP == "" && c.TLS == "") {
		return nil
	}
	redactor, err := ingest.NewRedactor(a.cfg.RedactPatterns)
	if err != nil {
		return err
	}
	loc := time.UTC
	if c.Timezone != "" {
		if loc, err = time.LoadLocation(c.Timezone); err != nil {
			return fmt.Errorf("syslog.timezone: %w", err)
		}
	}
	o := syslog.Options{UDP: c.UDP, TCP: c.TCP, TLS: c.TLS, Rate: c.Rate, Burst: c.Burst, Queue: c.Queue,
		MaxMessage: c.MaxMessage, Location: loc, Publisher: syslogPublisher{redactor, a.devmap}, Logger: a.log}
	if c.TLS != "" {
		cert := a.tlsCert
		if c.CertFile != "" || c.KeyFile != "" {
			if cert, err = tls.LoadX509KeyPair(c.CertFile, c.KeyFile); err != nil {
				return fmt.Errorf("syslog: cannot load cert_file/key_file: %w", err)
			}
		}
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	s, err := syslog.New(o)
	if err != nil {
		return err
	}
	if err := s.Listen(); err != nil {
		return err
	}
	udp, tcp, tlsAddr := s.Addrs()
	a.log.Info("syslog listening", "component", "syslog", "udp", fmt.Sprint(udp), "tcp", fmt.Sprint(tcp), "tls", fmt.Sprint(tlsAddr))
	return s.Run(ctx)
}
