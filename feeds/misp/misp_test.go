package misp

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/feeds/internal/corpus"
)

var now = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

func TestParseSednit(t *testing.T) {
	fh := corpus.Open(t, "misp-event-sednit.json")
	ins, res, err := Parse(fh, &feeds.Feed{Name: "misp"}, now)
	if err != nil {
		t.Fatal(err)
	}
	// 7 domains in the event; in its 49 objects 37 sha1, 12 ip-dst and 12
	// domain attributes flagged to_ids. Links, text and file names skip.
	if res.Imported != 68 || res.Rejected != 0 || res.Skipped != 2+37+15 {
		t.Fatalf("result %+v", res)
	}
	count := map[feeds.Type]int{}
	certain := 0
	for _, in := range ins {
		count[in.Type]++
		switch in.Confidence {
		case 93: // from an osint:certainty="93" tag
			certain++
		case 50: // feed default
		default:
			t.Fatalf("confidence %d: %+v", in.Confidence, in)
		}
	}
	_ = certain // the sednit to_ids attributes carry no certainty tag
	if count[feeds.TypeDomain] != 19 || count[feeds.TypeSHA1] != 37 || count[feeds.TypeIP] != 12 {
		t.Errorf("counts %v", count)
	}
}

func TestParseFeed(t *testing.T) {
	sednit, err := os.ReadFile(corpus.Path(t, "misp-event-sednit.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("manifest.json", `{"5a3c2fcd-8328-42bb-a95e-4f4402de0b81": {"info": "Sednit"},
		"11111111-2222-4333-8444-555555555555": {"info": "IoT botnet"},
		"99999999-2222-4333-8444-555555555555": {"info": "missing"}}`)
	write("5a3c2fcd-8328-42bb-a95e-4f4402de0b81.json", `{"Event": `+string(sednit)+`}`)
	write("11111111-2222-4333-8444-555555555555.json", `{"Event": {"uuid": "11111111-2222-4333-8444-555555555555", "info": "IoT botnet",
		"Attribute": [
			{"uuid": "a1", "type": "ip-dst|port", "value": "192.0.2.50|23", "to_ids": true, "Tag": [{"name": "osint:certainty=\"80\""}]},
			{"uuid": "a2", "type": "filename|sha256", "value": "mozi.m|e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "to_ids": true},
			{"uuid": "a3", "type": "url", "value": "http://192.0.2.50/bins/mozi.m", "to_ids": true},
			{"uuid": "a4", "type": "domain", "value": "bad domain", "to_ids": true}
		]}}`)
	open := func(_ context.Context, name string) (io.ReadCloser, error) { return os.Open(filepath.Join(dir, name)) }
	ins, res, err := ParseFeed(context.Background(), open, &feeds.Feed{Name: "feed"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != 68+3 || res.Rejected != 2 {
		t.Fatalf("result %+v", res)
	}
	joined := strings.Join(res.Errors, "\n")
	if !strings.Contains(joined, "attribute 3 (domain): bad domain") || !strings.Contains(joined, "99999999") {
		t.Errorf("errors %q", res.Errors)
	}
	var port bool
	for _, in := range ins {
		if in.Value == "192.0.2.50" && len(in.And) == 1 && in.And[0].Value == "23" && in.Confidence == 80 {
			port = true
		}
	}
	if !port {
		t.Error("ip-dst|port not split or osint:certainty not read")
	}
}
