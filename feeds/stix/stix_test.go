package stix

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/feeds/internal/corpus"
)

var now = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

func TestParsePattern(t *testing.T) {
	f := func(pat string, want string) {
		t.Helper()
		dnf, err := ParsePattern(pat)
		if err != nil {
			t.Fatalf("%s: %v", pat, err)
		}
		var alts []string
		for _, alt := range dnf {
			var as []string
			for _, a := range alt {
				as = append(as, string(a.Type)+"="+a.Value)
			}
			alts = append(alts, strings.Join(as, "&"))
		}
		if got := strings.Join(alts, " | "); got != want {
			t.Errorf("%s:\n got %s\nwant %s", pat, got, want)
		}
	}
	f("[ipv4-addr:value = '10.0.0.1']", "ip=10.0.0.1")
	f("[ipv4-addr:value = '10.0.0.1/32']", "ip=10.0.0.1")
	f("[ipv4-addr:value ISSUBSET '10.1.2.3/16']", "ip=10.1.0.0/16")
	f("[domain-name:value = 'a.example' OR domain-name:value = 'b.example']", "domain=a.example | domain=b.example")
	f("[(ipv4-addr:value = '10.0.0.1' OR ipv4-addr:value = '10.0.0.2') AND network-traffic:dst_port = 23]",
		"ip=10.0.0.1&port=23 | ip=10.0.0.2&port=23")
	f("([url:value = 'http://x.example/a'] OR [file:hashes.MD5 = 'D41D8CD98F00B204E9800998ECF8427E'])",
		"url=http://x.example/a | md5=d41d8cd98f00b204e9800998ecf8427e")
	f(`[file:name = 'it\'s.exe' AND file:hashes.'SHA-1' = 'da39a3ee5e6b4b0d3255bfef95601890afd80709']`,
		"file-name=it's.exe&sha1=da39a3ee5e6b4b0d3255bfef95601890afd80709")

	bad := func(pat, want string) {
		t.Helper()
		_, err := ParsePattern(pat)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", pat, err, want)
		}
	}
	bad("[ipv4-addr:value = '10.0.0.1'] AND [ipv4-addr:value = '10.0.0.2']", "AND between observations")
	bad("[ipv4-addr:value = '10.0.0.1'] WITHIN 5 SECONDS", "WITHIN")
	bad("[url:value LIKE 'http://%']", "LIKE")
	bad("[ipv4-addr:value != '10.0.0.1']", "!=")
	bad("[process:name = 'sh']", "object path on process is unsupported")
	bad("[ipv4-addr:value = 's3cret-token-value']", "bad address")
	bad("[x-s3cret:value = '10.0.0.1']", "object path is unsupported")
	bad("[ipv4-addr:value = '10.0.0.300']", "bad address")
	bad("[ipv4-addr:value = '10.0.0.1'", "expected \"]\"")
	bad("[domain-name:value = 'x", "unterminated")
}

func TestParseBundle21(t *testing.T) {
	fh, err := os.Open("testdata/bundle21.json")
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	feed := &feeds.Feed{Name: "test", Confidence: 40, Expiry: 24 * time.Hour}
	ins, res, err := Parse(fh, feed, now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != 5 || res.Rejected != 3 || res.Skipped != 2 {
		t.Fatalf("result %+v, want imported=5 rejected=3 skipped=2", res)
	}
	for _, id := range []string{"000000000005", "000000000006", "000000000008"} {
		found := false
		for _, e := range res.Errors {
			found = found || strings.Contains(e, id)
		}
		if !found {
			t.Errorf("no error names indicator ...%s: %q", id, res.Errors)
		}
	}
	byVal := map[string]feeds.Indicator{}
	for _, in := range ins {
		byVal[in.Value] = in
	}
	if len(ins) != 9 {
		t.Errorf("got %d indicators, want 9: %+v", len(ins), ins)
	}
	m := byVal["198.51.100.7"]
	if m.Confidence != 85 || m.Feed != "test" || !m.ValidUntil.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) || len(m.Labels) != 2 {
		t.Errorf("mirai indicator %+v", m)
	}
	r := byVal["203.0.113.0/24"]
	if r.Confidence != 40 || !r.ValidUntil.Equal(time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("range indicator: feed defaults not applied: %+v", r)
	}
	if _, ok := byVal["2001:db8:bad::/48"]; !ok {
		t.Error("ipv6 prefix missing")
	}
	if _, ok := byVal["evil-update.example"]; !ok {
		t.Error("domain not normalized")
	}
	if _, ok := byVal["http://evil-update.example/fw.bin"]; !ok {
		t.Error("url not normalized")
	}
	h := byVal["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]
	if h.Type != feeds.TypeSHA256 || len(h.And) != 1 || h.And[0].Value != "mozi.a" {
		t.Errorf("hash AND name: %+v", h)
	}
	p := byVal["192.0.2.99"]
	if len(p.And) != 1 || p.And[0] != (feeds.Cond{Type: feeds.TypePort, Value: "1883"}) {
		t.Errorf("ip AND port: %+v", p)
	}
}

func TestParseATTACKICS(t *testing.T) {
	fh := corpus.Open(t, "ics-attack.json")
	ins, res, err := Parse(fh, &feeds.Feed{Name: "attack-ics"}, now)
	if err != nil {
		t.Fatal(err)
	}
	// The ATT&CK ICS bundle (STIX 2.0) has 1825 objects and no indicator.
	if len(ins) != 0 || res.Imported != 0 || res.Rejected != 0 || res.Skipped != 1825 {
		t.Errorf("got %d indicators, result %+v; want 0 imported, 1825 skipped", len(ins), res)
	}
}
