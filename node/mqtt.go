package node

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/ingest"

	ingestmqtt "github.com/vigil-iot/vigil/ingest/mqtt"
)

// MQTTIngestConfig is the `mqtt_ingest` section: the broker that agents
// with `transport: mqtt` report to. Absent (or without url), the server
// does not connect to any broker.
type MQTTIngestConfig struct {
	// URL is tcp://host:1883, or ssl://host:8883 (also tls://, mqtts://).
	URL string `yaml:"url"`
	// Username and Password are the server's broker account; its ACL must
	// allow subscribing to vigil/+/report and vigil/+/result and
	// publishing to vigil/+/cmd.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// CAFile is a PEM file of the CAs of the broker's certificate.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the server's client certificate and key,
	// for a broker that requires one (as the agents' mutual-TLS broker).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientID names the server's persistent session (default
	// vigil-ingest); reports sent while the server is down wait in it.
	ClientID string `yaml:"client_id"`
}

// runMQTTIngest subscribes to the agents' MQTT topics when mqtt_ingest is
// configured: reports go to the bus, command results to commandResult. It
// runs until ctx ends.
func (a *Node) runMQTTIngest(ctx context.Context) error {
	if a.mqttIn == nil {
		return nil
	}
	return a.mqttIn.Run(ctx)
}

// commandQueued delivers a signed command to an agent that speaks MQTT
// (vigil/<device>/cmd) as well; agents on HTTPS take it from their poll.
func (a *Node) commandQueued(deviceID string, s command.Signed) {
	if a.mqttIn == nil {
		return
	}
	b, err := json.Marshal(s)
	if err == nil {
		err = a.mqttIn.SendCommand(deviceID, b)
	}
	if err != nil {
		a.log.Warn("cannot send command over MQTT", "component", "mqtt", "device", deviceID, "err", err)
	}
}

// openMQTTIngest makes the MQTT source when mqtt_ingest is configured.
func (a *Node) openMQTTIngest() error {
	c := a.cfg.MQTTIngest
	if c == nil || c.URL == "" {
		return nil
	}
	redactor, err := ingest.NewRedactor(a.cfg.RedactPatterns)
	if err != nil {
		return err
	}
	src, err := ingestmqtt.New(ingestmqtt.Options{
		MaxFuture:  time.Duration(a.cfg.MaxClockSkew),
		Redactor:   redactor,
		URL:        c.URL,
		ClientID:   c.ClientID,
		Username:   c.Username,
		Password:   c.Password,
		CAFile:     c.CAFile,
		CertFile:   c.CertFile,
		KeyFile:    c.KeyFile,
		Publisher:  a.bus,
		OnResult:   a.commandResult,
		Logger:     a.log,
		Registerer: a.registry,
	})
	if err != nil {
		return fmt.Errorf("cannot start mqtt_ingest: %w", err)
	}
	a.mqttIn = src
	return nil
}
