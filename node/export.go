package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"regexp"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vigil-iot/vigil/export"
)

// ExportConfig is the `export` section: the SIEMs alerts are sent to
// (package export, docs/export.md). Each sink consumes the bus's alerts in
// its own durable consumer group "export-<name>".
//
//	export:
//	  - type: hec                      # Splunk HTTP Event Collector
//	    url: https://splunk:8088
//	    token: ${SPLUNK_HEC_TOKEN}
//	    format: ecs                    # or ocsf
//	  - type: elasticsearch
//	    url: https://es:9200
//	    token: ${ES_API_KEY}           # or user:password in the URL
//	    index: vigil-alerts
//	  - type: syslog
//	    url: tls://siem:6514           # or tcp://
//	    ca_file: /etc/vigil/siem-ca.pem
//	    format: ocsf
//	  - type: nats
//	    url: nats://nats:4222          # empty: the bus's server (nats_url)
//	    subject: siem.vigil.alerts
type ExportConfig []ExportSinkConfig

// ExportSinkConfig is one entry of export: one SIEM.
type ExportSinkConfig struct {
	// Type is hec, elasticsearch, syslog or nats.
	Type string `yaml:"type"`
	// Name names the sink in logs, metrics and its consumer group
	// (default: the type; required when two sinks have the same type).
	Name   string `yaml:"name"`
	URL    string `yaml:"url"`
	Token  string `yaml:"token"`
	Format string `yaml:"format"`
	// Index is the Splunk index or the Elasticsearch index/data stream.
	Index string `yaml:"index"`
	// Sourcetype of Splunk events (default vigil:alert).
	Sourcetype string `yaml:"sourcetype"`
	// Subject and JetStream (publish with acknowledgement) of a NATS sink.
	Subject   string `yaml:"subject"`
	JetStream bool   `yaml:"jetstream"`
	// CAFile are the roots a syslog TLS collector's certificate is
	// checked against (default: the system's).
	CAFile string `yaml:"ca_file"`
	// Hostname in syslog headers (default the host's name).
	Hostname string `yaml:"hostname"`
	// Incidents also sends every version of the incidents, through a
	// second connection (metrics and logs under <name>-incidents).
	Incidents bool `yaml:"incidents"`
}

var exportName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// validate checks the sinks; natsURL is the bus's external server (nats_url).
func (c ExportConfig) validate(natsURL string) error {
	seen := map[string]bool{}
	for i, s := range c {
		where := fmt.Sprintf("export[%d]", i)
		name := s.name()
		if !exportName.MatchString(name) {
			return fmt.Errorf("%s.name: %q: use letters, digits, '_' and '-' (at most 32)", where, name)
		}
		if seen[name] {
			return fmt.Errorf("%s.name: %q is used twice (name the sinks of one type)", where, name)
		}
		seen[name] = true
		if _, err := export.EncoderFor(s.Format); err != nil {
			return fmt.Errorf("%s.format: %w", where, err)
		}
		if s.Type == "nats" && s.URL == "" && natsURL == "" {
			return fmt.Errorf("%s.url: a nats sink needs a url when the bus is embedded (no nats_url)", where)
		}
		if _, err := s.sink(nil, ""); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return nil
}

func (s ExportSinkConfig) name() string {
	if s.Name != "" {
		return s.Name
	}
	return s.Type
}

// sink makes the sink; cfg gives the outbound policy of HTTP sinks (nil
// while validating), busURL the bus's URL for a NATS sink without one.
func (s ExportSinkConfig) sink(cfg *Config, busURL string) (export.Sink, error) {
	switch s.Type {
	case "hec":
		o := export.HECOptions{URL: s.URL, Token: s.Token, Index: s.Index, Sourcetype: s.Sourcetype, Host: s.Hostname}
		if cfg != nil {
			o.Client = cfg.egress().Client(30 * time.Second)
		}
		return export.NewHEC(o)
	case "elasticsearch":
		o := export.BulkOptions{URL: s.URL, Token: s.Token, Index: s.Index}
		if cfg != nil {
			o.Client = cfg.egress().Client(30 * time.Second)
		}
		return export.NewBulk(o)
	case "syslog":
		o := export.SyslogOptions{URL: s.URL, Hostname: s.Hostname}
		if o.Hostname == "" {
			o.Hostname, _ = os.Hostname()
		}
		if s.CAFile != "" {
			pem, err := os.ReadFile(s.CAFile)
			if err != nil {
				return nil, fmt.Errorf("ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", s.CAFile)
			}
			o.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		return export.NewSyslog(o)
	case "nats":
		url := s.URL
		if url == "" {
			if cfg == nil {
				url = "nats://bus" // validate checked that the bus is external
			} else if url = busURL; url == "" {
				return nil, fmt.Errorf("nats sink without url: the embedded bus does not listen (set url or bus_listen)")
			}
		}
		return export.NewNATS(export.NATSOptions{URL: url, Token: s.Token, Subject: s.Subject, JetStream: s.JetStream})
	}
	return nil, fmt.Errorf("type %q: want hec, elasticsearch, syslog or nats", s.Type)
}

// runExport runs one exporter per configured sink until ctx ends.
func (a *Node) runExport(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range a.cfg.Export {
		sink, err := s.sink(&a.cfg, a.bus.ClientURL())
		if err != nil {
			return fmt.Errorf("export %s: %w", s.name(), err)
		}
		enc, _ := export.EncoderFor(s.Format)
		e, err := export.New(sink, export.Options{Name: s.name(), Encoder: enc, Logger: a.log, Registerer: a.registry})
		if err != nil {
			return err
		}
		a.log.Info("exporting alerts", "sink", s.name(), "type", s.Type, "group", e.Group())
		g.Go(func() error { return e.Run(gctx, a.bus) })
		if s.Incidents {
			ie, err := a.incidentExporter(s)
			if err != nil {
				return err
			}
			g.Go(func() error { return ie(gctx) })
		}
	}
	return g.Wait()
}
