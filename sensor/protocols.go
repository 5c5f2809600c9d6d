package sensor

import (
	"strings"

	"github.com/vigil-iot/vigil/proto"
	"github.com/vigil-iot/vigil/proto/amqp"
	"github.com/vigil-iot/vigil/proto/coap"
	"github.com/vigil-iot/vigil/proto/dns"
	httpproto "github.com/vigil-iot/vigil/proto/http"
	"github.com/vigil-iot/vigil/proto/modbus"
	"github.com/vigil-iot/vigil/proto/mqtt"
	"github.com/vigil-iot/vigil/proto/rtps"
	tlsproto "github.com/vigil-iot/vigil/proto/tls"
	"github.com/vigil-iot/vigil/proto/websocket"
)

// Protocol describes one application protocol the sensor decodes.
type Protocol struct {
	// Name is the flow.app_proto value and usually the event kind.
	Name string
	// TCPPorts and UDPPorts are the well-known server ports.
	TCPPorts, UDPPorts []uint16
	// Probe, when set, recognises the protocol on other ports from the
	// first bytes the client sends (TCP) or the first datagram (UDP).
	Probe func(data []byte) bool
	// ProbeServer also tries Probe on the first bytes the server sends
	// when they come before the client's (TCP protocols where either
	// side may speak first).
	ProbeServer bool
	// NewStream returns a parser for one TCP connection.
	NewStream func() proto.StreamParser
	// Datagram parses UDP payloads.
	Datagram proto.DatagramParser
}

// DefaultProtocols returns every decoder the sensor ships, configured by
// cfg.
func DefaultProtocols(cfg Config) []Protocol {
	mc := mqtt.Config{PayloadPreview: cfg.PayloadPreview}
	return []Protocol{
		{
			Name:      "dns",
			UDPPorts:  []uint16{53, 5353},
			TCPPorts:  []uint16{53},
			Datagram:  dns.Datagram{},
			NewStream: func() proto.StreamParser { return &dns.Stream{} },
		},
		{
			// CoAP over UDP (5683) and over TCP (RFC 8323, 5683); on
			// other ports, see the probing entries at the end.
			Name:      "coap",
			UDPPorts:  []uint16{5683},
			TCPPorts:  []uint16{5683},
			Datagram:  &coap.Parser{PayloadPreview: cfg.PayloadPreview},
			NewStream: func() proto.StreamParser { return &coap.Stream{PayloadPreview: cfg.PayloadPreview} },
		},
		{
			Name:      "mqtt",
			TCPPorts:  []uint16{1883},
			Probe:     mqtt.Probe,
			NewStream: func() proto.StreamParser { return mqtt.New(mc) },
		},
		{
			// DTLS: CoAP over DTLS (5684), LwM2M (5684), and probed.
			Name:     "dtls",
			UDPPorts: []uint16{5684},
			Probe:    tlsproto.ProbeDTLS,
			Datagram: tlsproto.DTLS{},
		},
		{
			// DDS-RTPS: recognised by its header on any UDP port (the
			// standard ports are 7400 + 250 * domain + offsets).
			Name:     "rtps",
			Probe:    rtps.Probe,
			Datagram: rtps.Parser{},
		},
		{
			Name:      "amqp",
			TCPPorts:  []uint16{5672},
			Probe:     amqp.Probe,
			NewStream: func() proto.StreamParser { return amqp.New() },
		},
		{
			Name:      "modbus",
			TCPPorts:  []uint16{502},
			Probe:     modbus.Probe,
			NewStream: func() proto.StreamParser { return modbus.New() },
		},
		{
			Name:     "http",
			TCPPorts: []uint16{80, 8000, 8080, 8081, 9001},
			Probe:    httpproto.Probe,
			NewStream: func() proto.StreamParser {
				p := httpproto.New()
				p.Upgrade = func(sub string) proto.StreamParser {
					// MQTT over WebSocket: subprotocol "mqtt" (MQTT 3.1.1
					// and 5) or "mqttv3.1".
					if strings.HasPrefix(strings.ToLower(sub), "mqtt") {
						return websocket.New(mqtt.New(mc))
					}
					return websocket.New(nil)
				}
				return p
			},
		},
		{
			// TLS, including MQTT over TLS (8883), CoAP's HTTPS
			// gateways and AMQPS (5671).
			Name:      "tls",
			TCPPorts:  []uint16{443, 8443, 8883, 5671, 993, 995, 465, 636},
			Probe:     tlsproto.Probe,
			NewStream: func() proto.StreamParser { return tlsproto.New() },
		},
		{
			// CoAP over UDP on other ports, by a strict look at the first
			// datagram (a well-formed request). Last, so that protocols
			// with a stronger signature are tried first.
			Name:     "coap",
			Probe:    coap.Probe,
			Datagram: &coap.Parser{PayloadPreview: cfg.PayloadPreview},
		},
		{
			// CoAP over TCP on other ports: the CSM each side sends
			// first, whichever comes first.
			Name:        "coap",
			Probe:       coap.ProbeTCP,
			ProbeServer: true,
			NewStream:   func() proto.StreamParser { return &coap.Stream{PayloadPreview: cfg.PayloadPreview} },
		},
	}
}

// registry finds the protocol of a flow.
type registry struct {
	tcp       map[uint16]*Protocol
	udp       map[uint16]*Protocol
	probes    []*Protocol // TCP
	udpProbes []*Protocol
	names     map[string]any // protocol names boxed for event fields
}

func newRegistry(ps []Protocol) *registry {
	r := &registry{tcp: map[uint16]*Protocol{}, udp: map[uint16]*Protocol{}, names: map[string]any{}}
	for i := range ps {
		p := &ps[i]
		r.names[p.Name] = p.Name
		for _, port := range p.TCPPorts {
			r.tcp[port] = p
		}
		for _, port := range p.UDPPorts {
			r.udp[port] = p
		}
		if p.Probe != nil && p.NewStream != nil {
			r.probes = append(r.probes, p)
		}
		if p.Probe != nil && p.Datagram != nil {
			r.udpProbes = append(r.udpProbes, p)
		}
	}
	return r
}

func (r *registry) wellKnown(ipProto uint8, port uint16) bool {
	switch ipProto {
	case ipTCP:
		return r.tcp[port] != nil
	case ipUDP:
		return r.udp[port] != nil
	}
	return false
}
