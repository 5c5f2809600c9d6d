package sensor

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	vigil "github.com/vigil-iot/vigil"
)

// TestAppendEventMatchesEncodingJSON checks the hand-written encoder
// against encoding/json on every event of the corpus captures and on
// awkward values.
func TestAppendEventMatchesEncodingJSON(t *testing.T) {
	evs := []vigil.Event{{
		ID: "x", Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600)), Received: time.Unix(5, 0).UTC(),
		DeviceID: "d", Kind: "k", Severity: vigil.SeverityHigh, Outcome: "failure",
		Network: &vigil.Network{SrcIP: netip.MustParseAddr("::1"), DstPort: 9},
		Fields: map[string]any{"s": "a\"b\\c\n\t\x01<>&\u2028é\xff", "f": 1e-7, "g": 1e21, "h": -0.5, "i": 123456789.0,
			"b": true, "l": []string{"x", "<y>"}, "n": nil, "z": []string(nil), "e": ""},
	}, {Kind: "empty"}}
	for _, dir := range []string{"pcap/zeek/Traces/mqtt.pcap", "pcap/zeek/Traces/modbus/modbusSmall.pcap",
		"pcap/suricata-verify/mqtt5-pub-mosquittoprops/input.pcap", "pcap/zeek/Traces/dns/mdns.pcap"} {
		e, _ := runPcap(t, Config{}, filepath.Join(corpusDir(t, filepath.Dir(filepath.Dir(dir))), filepath.Base(filepath.Dir(dir)), filepath.Base(dir)))
		evs = append(evs, e...)
	}
	var keys []string
	for i := range evs {
		want, err := json.Marshal(&evs[i])
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		got, keys, err = appendEvent(nil, &evs[i], keys)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, got, want)
		}
	}
}
