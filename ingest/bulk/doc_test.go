package bulk

import (
	"os"
	"strings"
	"testing"
)

func TestDocExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/agent-protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- vigil:example bulk-ndjson -->\n```json\n"
	_, rest, ok := strings.Cut(string(doc), marker)
	if !ok {
		t.Fatalf("docs/agent-protocol.md has no %q", marker)
	}
	body, _, _ := strings.Cut(rest, "\n```")
	evs, errs := Decode([]byte(body), received)
	if len(errs) != 0 || len(evs) != 3 {
		t.Fatalf("doc example: %d events, errors %v", len(evs), errs)
	}
	if v, _ := evs[1].FieldNumber("destination.port"); v != 502 || evs[1].DeviceID != "plc-0007" || evs[1].Fields["modbus.function_code"] != 6.0 {
		t.Fatalf("doc example line 2: %+v %+v", evs[1], evs[1].Network)
	}
	if evs[2].Source != "syslog" || evs[2].ID != "syslog-3f2a" || evs[2].Fields["message"] == nil {
		t.Fatalf("doc example line 3: %+v", evs[2])
	}
}
