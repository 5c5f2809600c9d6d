package sensor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"path/filepath"
	"regexp"
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
	for i := range evs {
		want, err := json.Marshal(&evs[i])
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		got, err = evs[i].AppendJSON(nil, true)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// TestNDJSONOutputAndSummary checks what `vigil sensor --pcap F --output -`
// relies on: one vigil.Event JSON object per line, and the summary line.
func TestNDJSONOutputAndSummary(t *testing.T) {
	var out, progress bytes.Buffer
	f := filepath.Join(corpusDir(t, "pcap/zeek"), "Traces", "mqtt.pcap")
	st, err := Run(t.Context(), Config{Pcaps: []string{f}, Output: &out, Progress: &progress, OUI: testOUI()})
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	if uint64(len(lines)) != st.Events || st.Events == 0 {
		t.Fatalf("%d lines for %d events", len(lines), st.Events)
	}
	for i, l := range lines {
		var ev vigil.Event
		if err := json.Unmarshal(l, &ev); err != nil || ev.Kind == "" || ev.Source != "sensor" {
			t.Fatalf("line %d: %v %s", i+1, err, l)
		}
	}
	if !regexp.MustCompile(`^sensor: packets=\d+ bytes=\d+ events=\d+ seconds=[0-9.]+ gbps=[0-9.]+$`).MatchString(st.String()) {
		t.Fatalf("summary %q", st.String())
	}
	if !bytes.Contains(progress.Bytes(), []byte("100.0%")) {
		t.Fatalf("progress %q", progress.String())
	}
}

// TestRecycledEventsMatchKept checks that reusing the Fields maps of
// released events (NDJSON is a Releaser) changes nothing in the output:
// the NDJSON of a run, with small batches so that maps are reused many
// times, is byte for byte the encoding of the events a keeping Publisher
// collects.
func TestRecycledEventsMatchKept(t *testing.T) {
	files := []string{mixedCapture(t, 40),
		filepath.Join(corpusDir(t, "pcap/zeek"), "Traces", "mqtt.pcap"),
		filepath.Join(corpusDir(t, "pcap/zeek"), "Traces", "dns", "mdns.pcap"),
		filepath.Join(corpusDir(t, "pcap/suricata-verify"), "mqtt5-pub-mosquittoprops", "input.pcap")}
	for _, f := range files {
		kept, _ := runPcap(t, Config{BatchSize: 3}, f)
		var want []byte
		for i := range kept {
			b, err := json.Marshal(&kept[i])
			if err != nil {
				t.Fatal(err)
			}
			want = append(append(want, b...), '\n')
		}
		var got bytes.Buffer
		if _, err := Run(t.Context(), Config{Pcaps: []string{f}, Output: &got, OUI: testOUI(), BatchSize: 3}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s: recycled output differs from kept events (%d vs %d bytes)", f, got.Len(), len(want))
		}
	}
}

// linesCollector is a LinePublisher that keeps what it is given.
type linesCollector struct {
	lines  []byte
	events int
}

func (c *linesCollector) PublishEvents(context.Context, []vigil.Event) error {
	return errors.New("PublishEvents called on a LinePublisher")
}

func (c *linesCollector) PublishLines(_ context.Context, lines []byte, n int) error {
	c.lines = append(c.lines, lines...)
	c.events += n
	return nil
}

// TestLinePublisherGetsNDJSON checks that a LinePublisher is given, batch
// after batch, what NDJSON writes.
func TestLinePublisherGetsNDJSON(t *testing.T) {
	for _, f := range []string{mixedCapture(t, 40), filepath.Join(corpusDir(t, "pcap/zeek"), "Traces", "mqtt.pcap")} {
		var want bytes.Buffer
		if _, err := Run(t.Context(), Config{Pcaps: []string{f}, Output: &want, OUI: testOUI(), BatchSize: 5}); err != nil {
			t.Fatal(err)
		}
		c := &linesCollector{}
		st, err := Run(t.Context(), Config{Pcaps: []string{f}, Publisher: c, OUI: testOUI(), BatchSize: 5})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c.lines, want.Bytes()) || uint64(c.events) != st.Events || c.events != bytes.Count(c.lines, []byte("\n")) {
			t.Errorf("%s: %d events in %d bytes, want %d events in %d bytes", f, c.events, len(c.lines), st.Events, want.Len())
		}
	}
}
