package nsm

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/proto"
	"github.com/vigil-iot/vigil/proto/modbus"
)

// TestModbusAgreesWithSensor: what Modbus says of each function code is
// what the sensor's own decoder (proto/modbus) says of a request with it.
func TestModbusAgreesWithSensor(t *testing.T) {
	for fc := 1; fc < 128; fc++ {
		p := modbus.New()
		c := &proto.Context{Time: time.Unix(0, 0), Flow: vigil.Network{Transport: "tcp",
			SrcIP: netip.MustParseAddr("10.0.0.1"), SrcPort: 40000, DstIP: netip.MustParseAddr("10.0.0.2"), DstPort: 502}}
		// MBAP: transaction 1, protocol 0, length 6, unit 1; PDU fc, 4 bytes.
		adu := []byte{0, 1, 0, 0, 0, 6, 1, byte(fc), 0, 0, 0, 1}
		var evs []proto.Event
		p.Parse(c, adu, proto.EmitterFunc(func(ev proto.Event) { evs = append(evs, ev) }))
		var got *proto.Event
		for i := range evs {
			if evs[i].Action == "request" {
				got = &evs[i]
			}
		}
		if got == nil {
			continue // a code the decoder reports as an anomaly
		}
		var f proto.Fields
		SetModbusFunction(&f, fc)
		for _, k := range []string{"modbus.function_code", "modbus.function", "modbus.category", "modbus.access", "modbus.table", "modbus.write"} {
			a, _ := got.Fields.Get(k)
			b, _ := f.Get(k)
			if a != b {
				t.Errorf("fc %d: %s: sensor %v, nsm %v", fc, k, a, b)
			}
		}
	}
}

func TestTLSCipher(t *testing.T) {
	f := func(name, want string) {
		t.Helper()
		got, _ := TLSCipher(name)
		if got != want {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
	f("TLS_AES_128_GCM_SHA256", "0x1301")
	f("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "0xc02f")
	f("TLS_RSA_WITH_RC4_128_SHA", "0x0005")
	f("NOT_A_SUITE", "")
}
