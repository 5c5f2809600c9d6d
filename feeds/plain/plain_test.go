package plain

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/feeds/internal/corpus"
)

var now = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

func TestParseListThreatFox(t *testing.T) {
	p := corpus.Path(t, "threatfox-ips.txt")
	fh, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	// Count the non-blank lines independently.
	raw, _ := os.ReadFile(p)
	want := 0
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != "" {
			want++
		}
	}
	ins, res, err := ParseList(fh, &feeds.Feed{Name: "threatfox", Confidence: 70, Expiry: 30 * 24 * time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != want || res.Rejected != 0 || len(ins) != want || want < 19000 {
		t.Fatalf("imported=%d rejected=%d (%v), want %d", res.Imported, res.Rejected, res.Errors, want)
	}
	if ins[0].Value != "1.7.147.211" || ins[0].Type != feeds.TypeIP || ins[0].Confidence != 70 || !ins[0].ValidUntil.Equal(now.Add(30*24*time.Hour)) {
		t.Errorf("first indicator %+v", ins[0])
	}
}

func TestParseListMixed(t *testing.T) {
	in := `# comment
192.0.2.1
198.51.100.0/24  botnet
Evil.Example.
http://evil.example/x
d41d8cd98f00b204e9800998ecf8427e
203.0.113.5:8080
not a value
999.1.1.1
`
	ins, res, err := ParseList(strings.NewReader(in), &feeds.Feed{Name: "mixed"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != 6 || res.Rejected != 2 {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(res.Errors[0], "line 8") || !strings.Contains(res.Errors[1], "line 9") {
		t.Errorf("errors do not name lines: %q", res.Errors)
	}
	want := []string{"ip=192.0.2.1", "ip=198.51.100.0/24", "domain=evil.example", "url=http://evil.example/x", "md5=d41d8cd98f00b204e9800998ecf8427e", "ip=203.0.113.5"}
	for i, w := range want {
		if got := string(ins[i].Type) + "=" + ins[i].Value; got != w {
			t.Errorf("indicator %d = %s, want %s", i, got, w)
		}
	}
	if len(ins[5].And) != 1 || ins[5].And[0].Value != "8080" {
		t.Errorf("port condition lost: %+v", ins[5])
	}
	if ins[1].Confidence != 50 {
		t.Errorf("default confidence %d, want 50", ins[1].Confidence)
	}
}

func TestParseCSV(t *testing.T) {
	f := &feeds.Feed{Name: "tf", CSV: &feeds.CSVMapping{Value: "ioc_value", Type: "ioc_type", Confidence: "confidence_level", Name: "malware_printable"}}
	ins, res, err := ParseCSV(strings.NewReader(threatfox), f, now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != 3 || res.Rejected != 2 {
		t.Fatalf("result %+v", res)
	}
	if ins[0].Value != "45.61.136.7" || ins[0].Confidence != 100 || ins[0].Name != "Mozi" || len(ins[0].And) != 1 {
		t.Errorf("ip:port row: %+v", ins[0])
	}
	if ins[2].Type != feeds.TypeSHA256 {
		t.Errorf("hash row: %+v", ins[2])
	}
	_, _, err = ParseCSV(strings.NewReader(threatfox), &feeds.Feed{Name: "tf", CSV: &feeds.CSVMapping{Value: "nope"}}, now)
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing column error %v", err)
	}
	// Numbered columns, no header.
	ins, res, err = ParseCSV(strings.NewReader("x;192.0.2.9\ny;evil.example\n"), &feeds.Feed{Name: "n", CSV: &feeds.CSVMapping{Value: "1", NoHeader: true, Delimiter: ';'}}, now)
	if err != nil || res.Imported != 2 || ins[1].Type != feeds.TypeDomain {
		t.Errorf("numbered: %v %+v %+v", err, res, ins)
	}
}
