package misp

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/feeds/internal/corpus"
	"github.com/vigil-iot/vigil/feeds/internal/feedtest"
)

const botnet = `{"Event": {"uuid": "11111111-2222-4333-8444-555555555555", "info": "IoT botnet",
	"Tag": [{"name": "tlp:white"}, {"name": "osint:certainty=\"93\""}],
	"Attribute": [
		{"uuid": "a1", "type": "ip-dst|port", "value": "192.0.2.50|23", "to_ids": true, "Tag": [{"name": "osint:certainty=\"80\""}]},
		{"uuid": "a2", "type": "filename|sha256", "value": "mozi.m|e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "to_ids": true},
		{"uuid": "a3", "type": "url", "value": "http://192.0.2.50/bins/mozi.m", "to_ids": true},
		{"uuid": "a4", "type": "domain", "value": "bad domain", "to_ids": true},
		{"uuid": "a5", "type": "link", "value": "https://example.org/report", "to_ids": false},
		{"uuid": "a6", "type": "domain|ip", "value": "evil.example|192.0.2.1", "to_ids": true, "deleted": true}],
	"Object": [{"name": "file", "Attribute": [{"uuid": "o1", "type": "md5", "value": "D41D8CD98F00B204E9800998ECF8427E", "to_ids": true}]},
		{"name": "gone", "deleted": true, "Attribute": [{"uuid": "o2", "type": "md5", "value": "x", "to_ids": true}]}]}}`

// FuzzParse checks that Parse never panics and that what it returns holds
// together: an error (saying what it cannot do) comes with no indicators,
// the result counts one indicator per imported attribute and has one error
// per rejection, and every indicator has an id, the feed's name, a
// canonical value of a type to match on, conditions with values and a
// confidence in 1..100.
func FuzzParse(f *testing.F) {
	f.Add([]byte(botnet))
	for _, s := range feedtest.EdgeJSON {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"uuid": "u", "Attribute": [{"uuid": "a", "type": "sha1", "value": "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709", "to_ids": true}]}`))
	f.Add([]byte(`{"Event": null, "uuid": "u"}`))
	f.Add([]byte(`{"Event": {}}`))
	f.Add([]byte(`{"Event": 5}`))
	f.Add([]byte(`{"Event": {"uuid": "u", "Attribute": [{"type": "ip-src|port", "value": "192.0.2.1|", "to_ids": true},
		{"uuid": "b", "type": "hostname|port", "value": "|80", "to_ids": true},
		{"uuid": "d", "type": "ip-dst", "value": "::ffff:192.0.2.1", "to_ids": true, "Tag": [{"name": "osint:certainty=\"101\""}]}]}}`))
	f.Add([]byte(`{"Event": {"uuid": "u", "Attribute": [{"uuid": "c", "type": "ip-dst", "value": "192.0.2.1", "to_ids": "yes"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ins, res, err := Parse(bytes.NewReader(data), &feeds.Feed{Name: "misp"}, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
		feedtest.Failed(t, err, len(ins), res)
		feedtest.Result(t, res, len(ins))
		feedtest.Indicators(t, ins, "misp")
	})
}

// TestParseBadAttribute checks that an attribute or object of the wrong
// shape is rejected with where it is (positions; "e" is no uuid, so it is
// not quoted) and the rest of the event goes through.
func TestParseBadAttribute(t *testing.T) {
	ins, res, err := Parse(strings.NewReader(`{"Event": {"uuid": "e", "Attribute": [
		{"uuid": "a1", "type": "ip-dst", "value": "192.0.2.1", "to_ids": "1"},
		{"uuid": "a2", "type": "ip-dst", "value": "192.0.2.2", "to_ids": true}],
		"Object": [5, {"name": "x", "Attribute": [{"uuid": "o1", "type": "md5", "value": 5, "to_ids": true},
			{"uuid": "o2", "type": "domain", "value": "evil.example", "to_ids": true}]}]}}`), &feeds.Feed{Name: "misp"}, now)
	if err != nil || len(ins) != 2 || res.Rejected != 3 {
		t.Fatalf("%v %+v", err, res)
	}
	for i, want := range []string{"event attribute 0: cannot decode", "event object 0: cannot decode", "event object 1 attribute 0: cannot decode"} {
		if !strings.HasPrefix(res.Errors[i], want) {
			t.Errorf("error %d %q, want %q...", i, res.Errors[i], want)
		}
	}
}

// TestCorpusProperties checks what the fuzz target checks on the shared
// corpus's misp-event-sednit.json (skipped when the corpus is absent).
func TestCorpusProperties(t *testing.T) {
	fh := corpus.Open(t, "misp-event-sednit.json")
	ins, res, err := Parse(fh, &feeds.Feed{Name: "misp"}, now)
	if err != nil {
		t.Fatal(err)
	}
	feedtest.Result(t, res, len(ins))
	feedtest.Indicators(t, ins, "misp")
}

// TestParseFeedManifestIDs checks that a manifest cannot name files outside
// the feed: only UUID-like ids are opened, the others are rejected and the
// rest of the feed goes through.
func TestParseFeedManifestIDs(t *testing.T) {
	event := `{"Event": {"uuid": "e1", "info": "x", "Attribute": [{"uuid": "a", "type": "ip-dst", "value": "192.0.2.7", "to_ids": true}]}}`
	var opened []string
	open := func(_ context.Context, name string) (io.ReadCloser, error) {
		opened = append(opened, name)
		if name == "manifest.json" {
			return io.NopCloser(strings.NewReader(`{"5a3c2fcd-8328-42bb-a95e-4f4402de0b81": {}, "..": {}, "%2e%2e%2fadmin": {},
				"a?b": {}, "x#y": {}, "": {}, "user@host": {}, "` + strings.Repeat("f", 100) + `": {}}`)), nil
		}
		return io.NopCloser(strings.NewReader(event)), nil
	}
	ins, res, err := ParseFeed(context.Background(), open, &feeds.Feed{Name: "feed"}, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"manifest.json", "5a3c2fcd-8328-42bb-a95e-4f4402de0b81.json"}; strings.Join(opened, " ") != strings.Join(want, " ") {
		t.Fatalf("opened %q, want %q", opened, want)
	}
	if len(ins) != 1 || res.Imported != 1 || res.Rejected != 7 {
		t.Fatalf("indicators %d, result %+v", len(ins), res)
	}
	for _, e := range res.Errors {
		if !strings.Contains(e, "bad event uuid") || len(e) > 200 {
			t.Errorf("error %q", e)
		}
	}
}
