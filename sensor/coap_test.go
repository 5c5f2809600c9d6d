package sensor

import (
	"strings"
	"testing"

	vigil "github.com/vigil-iot/vigil"
)

// coapTCP frames a CoAP over TCP message (RFC 8323) with fewer than 13
// bytes of options and payload.
func coapTCP(code byte, token, rest []byte) []byte {
	return append(append([]byte{byte(len(rest)<<4) | byte(len(token)), code}, token...), rest...)
}

func coapSummary(evs []vigil.Event) string {
	var s []string
	for _, e := range evs {
		if e.Kind == "coap" {
			a := e.Action
			if e.Action == "anomaly" {
				a += ":" + e.Fields["anomaly.event"].(string)
			}
			s = append(s, a)
		}
	}
	return strings.Join(s, " ")
}

func appProto(evs []vigil.Event) string {
	for _, e := range evs {
		if e.Kind == "flow" {
			s, _ := e.Fields["flow.app_proto"].(string)
			return s
		}
	}
	return "no flow"
}

// TestCoAPOnOtherUDPPorts: a CoAP exchange on UDP port 15683 is
// recognised from its request; other datagrams on such ports are not
// taken for CoAP.
func TestCoAPOnOtherUDPPorts(t *testing.T) {
	req := []byte{0x42, 0x01, 0x12, 0x34, 0xca, 0xfe, 0xb4, 't', 'e', 'm', 'p'}
	resp := []byte{0x62, 0x45, 0x12, 0x34, 0xca, 0xfe, 0xc0, 0xff, '2', '1'}
	evs, _ := runPcap(t, Config{}, writeRaw(t, seq(ipv4UDP(fragCli, fragSrv, 40000, 15683, req), ipv4UDP(fragSrv, fragCli, 15683, 40000, resp))))
	if got := coapSummary(evs); got != "request response" || appProto(evs) != "coap" {
		t.Fatalf("coap on 15683: %q, flow %s", got, appProto(evs))
	}
	for _, payload := range [][]byte{[]byte("hello world"), {0x40, 0x01, 0, 1}, {0x45, 0x01, 0, 1, 1, 2, 3, 4, 5, 0xd0, 0x00}} {
		evs, _ = runPcap(t, Config{}, writeRaw(t, seq(ipv4UDP(fragCli, fragSrv, 40000, 15684, payload))))
		if got := coapSummary(evs); got != "" || appProto(evs) != "" {
			t.Errorf("%q taken for CoAP: %q", payload, got)
		}
	}
}

// TestCoAPOverTCP decodes CoAP over TCP on its port, and on another port
// where the server's CSM comes before the client's.
func TestCoAPOverTCP(t *testing.T) {
	csmC := coapTCP(0xe1, nil, []byte{0x22, 0x04, 0x80}) // Max-Message-Size 1152
	csmS := coapTCP(0xe1, nil, []byte{0x22, 0x04, 0x80})
	get := coapTCP(0x01, []byte{1}, []byte{0xb4, 't', 'i', 'm', 'e'})
	resp := coapTCP(0x45, []byte{1}, []byte{0xff, '1', '2', ':', '0', '0'})
	want := "signaling signaling request response"
	evs, _ := runPcap(t, Config{}, writePcap(t, LinkEthernet, 40000, 5683, exchange(csmC, csmS, get, resp)))
	if got := coapSummary(evs); got != want || appProto(evs) != "coap" {
		t.Fatalf("5683: %q, flow %s", got, appProto(evs))
	}
	evs, _ = runPcap(t, Config{}, writePcap(t, LinkEthernet, 40000, 15683, exchange(nil, csmS, append(csmC, get...), resp)))
	if got := coapSummary(evs); got != "signaling signaling request response" || appProto(evs) != "coap" {
		t.Fatalf("15683, server first: %q, flow %s", got, appProto(evs))
	}
	// Without the CSM: decoded on 5683, with the anomaly.
	evs, _ = runPcap(t, Config{}, writePcap(t, LinkEthernet, 40000, 5683, exchange(get, resp)))
	if got := coapSummary(evs); got != "anomaly:missing_csm request anomaly:missing_csm response" {
		t.Fatalf("no csm: %q", got)
	}
}
