package vigil

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestExcerptOfIsBounded: an excerpt keeps the named fields first, then
// key fields, at most MaxExcerptFields, each value cut on a rune boundary.
func TestExcerptOfIsBounded(t *testing.T) {
	ev := &Event{ID: "e1", Kind: "process", DeviceID: "cam-1", Fields: map[string]any{
		"process.command_line": strings.Repeat("é", 1000),
		"user.name":            "root",
		"custom.field":         "x",
	}}
	for i := range 40 {
		ev.Fields["f"+string(rune('a'+i%26))+string(rune('a'+i/26))] = "v"
	}
	names := []string{"custom.field"}
	for k := range ev.Fields {
		if strings.HasPrefix(k, "f") {
			names = append(names, k)
		}
	}
	x := ExcerptOf(ev, names...)
	if len(x.Fields) != MaxExcerptFields {
		t.Fatalf("%d fields, want %d", len(x.Fields), MaxExcerptFields)
	}
	if x.Fields["custom.field"] != "x" || x.EventID != "e1" || x.DeviceID != "cam-1" {
		t.Errorf("excerpt %+v lacks the first named field or the event's identity", x)
	}
	y := ExcerptOf(ev, "process.command_line")
	v := y.Fields["process.command_line"]
	if len(v) > MaxExcerptValue || !utf8.ValidString(v) || !strings.HasSuffix(v, "…") {
		t.Errorf("long value kept as %d bytes (valid UTF-8 %v), want at most %d ending with …", len(v), utf8.ValidString(v), MaxExcerptValue)
	}
	if y.Fields["user.name"] != "root" {
		t.Errorf("key field user.name missing from %v", y.Fields)
	}
}
