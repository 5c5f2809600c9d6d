package sensor

import (
	"encoding/json"
	"os"
	"testing"
)

// TestDump prints the events of VIGIL_DUMP_PCAP, for debugging.
func TestDump(t *testing.T) {
	f := os.Getenv("VIGIL_DUMP_PCAP")
	if f == "" {
		t.Skip("VIGIL_DUMP_PCAP not set")
	}
	evs, st := runPcap(t, Config{}, f)
	for _, ev := range evs {
		b, _ := json.Marshal(ev)
		t.Log(string(b))
	}
	t.Log(st)
}
