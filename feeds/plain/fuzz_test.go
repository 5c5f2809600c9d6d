package plain

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/feeds/internal/corpus"
	"github.com/vigil-iot/vigil/feeds/internal/feedtest"
)

const mixed = "# comment\n192.0.2.1\n198.51.100.0/24  botnet\nEvil.Example.\nhttp://evil.example/x\nd41d8cd98f00b204e9800998ecf8427e\n203.0.113.5:8080\nnot a value\n999.1.1.1\n"

const threatfox = `################################################################
# ThreatFox IOCs: CSV export                                   #
################################################################
"first_seen_utc","ioc_id","ioc_value","ioc_type","threat_type","fk_malware","malware_alias","malware_printable","last_seen_utc","confidence_level","reference","tags","anonymous","reporter"
"2024-05-01 10:00:00","1","45.61.136.7:443","ip:port","botnet_cc","elf.mozi","","Mozi","","100","","","0","abuse_ch"
"2024-05-01 10:00:01","2","bad.example.net","domain","botnet_cc","elf.mirai","","Mirai","","75","","","0","abuse_ch"
"2024-05-01 10:00:02","3","e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","sha256_hash","payload","elf.mirai","","Mirai","","50","","","0","abuse_ch"
"2024-05-01 10:00:03","4","x","weird_type","payload","","","","","50","","","0","abuse_ch"
"2024-05-01 10:00:04","5","bad.example.org","domain","botnet_cc","","","","","high","","","0","abuse_ch"
`

// hints are the types Value is given by its callers: none, or one a CSV
// type column names.
var hints = []feeds.Type{"", feeds.TypeIP, feeds.TypeDomain, feeds.TypeURL, feeds.TypeMD5, feeds.TypeSHA1, feeds.TypeSHA256, feeds.TypeSHA512}

// FuzzValue checks that Value never panics, that an error says something,
// and that a value it accepts is of the hinted type (or one to match on),
// canonical (Normalize gives it back unchanged), with port conditions that
// are ports.
func FuzzValue(f *testing.F) {
	for _, s := range strings.Split(mixed, "\n") {
		f.Add(uint8(0), s)
	}
	for i, s := range []string{"", "192.0.2.1", "evil.example", "http://x", "D41D8CD98F00B204E9800998ECF8427E",
		"da39a3ee5e6b4b0d3255bfef95601890afd80709", strings.Repeat("a", 64), strings.Repeat("F", 128)} {
		f.Add(uint8(i), s)
	}
	for _, s := range []string{"[2001:db8::1]:443", "::ffff:192.0.2.1", "::ffff:192.0.2.1/128", "192.0.2.1%eth0", "fe80::1%eth0:80",
		"1.2.3.4:0", "1.2.3.4:99999", "HTTP://Evil.Example:80:80/a#x", "http://a/b #x", "a.b\u0085.", "x..", ".", "1.2.3.4.",
		"evil.example\x00", "\xff.\xfe", "http://\xff/", "a.b:80", "ftp://:80/", "0.0.0.0/0", "::/0"} {
		f.Add(uint8(0), s)
		f.Add(uint8(1), s)
		f.Add(uint8(2), s)
		f.Add(uint8(3), s)
	}
	f.Fuzz(func(t *testing.T, h uint8, raw string) {
		hint := hints[int(h)%len(hints)]
		typ, v, conds, err := Value(hint, raw)
		if err != nil {
			if err.Error() == "" || typ != "" || v != "" {
				t.Fatalf("error %q with %s %q", err, typ, v)
			}
			return
		}
		if hint != "" && typ != hint {
			t.Fatalf("%q with hint %s is %s", raw, hint, typ)
		}
		feedtest.Indicator(t, typ, v)
		for _, c := range conds {
			if n, err := feeds.Normalize(feeds.TypePort, c.Value); c.Type != feeds.TypePort || err != nil || n != c.Value {
				t.Fatalf("%q gives condition %+v", raw, c)
			}
		}
	})
}

// FuzzParseList checks that ParseList never panics, that every line that
// is not blank or a comment is either imported or rejected (one bad line
// does not stop the list), that the result counts what was returned, and
// that every indicator is canonical with the feed's name and confidence.
func FuzzParseList(f *testing.F) {
	f.Add([]byte(mixed))
	f.Add([]byte(""))
	f.Add([]byte("\n\r\n; x\n\t#\n"))
	f.Add([]byte("192.0.2.1\r\n192.0.2.2"))
	f.Add([]byte("192.0.2.1\x00\n\xff\xfe\n" + strings.Repeat("1", 100) + "\n"))
	f.Add([]byte("a.example\n" + strings.Repeat("x", 2000) + "\nb.example 1.2.3.4\n")) // longer than maxLine: TestParseListLongLine
	f.Fuzz(func(t *testing.T, data []byte) {
		ins, res, err := ParseList(bytes.NewReader(data), &feeds.Feed{Name: "list", Confidence: 70}, now)
		feedtest.Error(t, err)
		if err != nil {
			t.Fatalf("error from a bytes.Reader: %v", err)
		}
		feedtest.Result(t, res, len(ins))
		feedtest.Indicators(t, ins, "list")
		lines := 0
		for _, l := range strings.Split(string(data), "\n") {
			if l = strings.TrimSpace(l); l != "" && l[0] != '#' && l[0] != ';' {
				lines++
			}
		}
		if res.Imported+res.Rejected != lines || res.Skipped != 0 {
			t.Fatalf("%d value lines, result %+v", lines, res)
		}
	})
}

// FuzzParseCSV checks, over any content and column mapping, that ParseCSV
// never panics, that an error (saying what it cannot do) comes with no
// indicators, that the result counts what was returned, and that every
// indicator is canonical with the feed's name and a confidence in 1..100.
func FuzzParseCSV(f *testing.F) {
	f.Add([]byte(threatfox), "ioc_value", "ioc_type", "confidence_level", "malware_printable", int32(0), int32(0), false)
	f.Add([]byte(threatfox), "nope", "", "", "", int32(0), int32(0), false)
	f.Add([]byte("x;192.0.2.9\ny;evil.example\n"), "1", "", "", "", int32(0), int32(';'), true)
	f.Add([]byte("x;192.0.2.9\ny;evil.example\n"), "1", "0", "-1", "99999999999999999999", int32('#'), int32('#'), true)
	f.Add([]byte("v\n192.0.2.9\n"), "v", "", "", "", int32('"'), int32('\n'), false)
	f.Add([]byte("v\n192.0.2.9\n"), "0", "", "", "", int32(0), int32('\r'), true)
	f.Add([]byte("v,t,c\n\"192.0.2.9\"x,ip,101\n\"unterminated,ip,1\n"), "V", "T", "C", "", int32(0), int32(0), false)
	f.Add([]byte("\xff,\x00\n\xfe,1.2.3.4\n"), "1", "", "", "", int32(0), int32(0xfffd), false)
	f.Add([]byte(""), "v", "", "", "", int32(0), int32(0), false)
	f.Fuzz(func(t *testing.T, data []byte, value, typ, conf, name string, comment, delim int32, noHeader bool) {
		fd := &feeds.Feed{Name: "csv", CSV: &feeds.CSVMapping{Value: value, Type: typ, Confidence: conf, Name: name,
			Comment: comment, Delimiter: delim, NoHeader: noHeader}}
		ins, res, err := ParseCSV(bytes.NewReader(data), fd, now)
		feedtest.Failed(t, err, len(ins), res)
		feedtest.Result(t, res, len(ins))
		feedtest.Indicators(t, ins, "csv")
	})
}

// TestParseListLongLine checks that a line longer than maxLine is rejected
// with its number and the lines after it still go through.
func TestParseListLongLine(t *testing.T) {
	in := "192.0.2.1\n" + strings.Repeat("x", maxLine+10) + "\n192.0.2.3\n# " + strings.Repeat("z", maxLine) + "\n" + strings.Repeat("y", 3*maxLine) + "\r\n192.0.2.5"
	ins, res, err := ParseList(strings.NewReader(in), &feeds.Feed{Name: "long"}, now)
	if err != nil || len(ins) != 3 || res.Rejected != 2 {
		t.Fatalf("%v %+v, %d indicators", err, res, len(ins))
	}
	if !strings.HasPrefix(res.Errors[0], "line 2: ") || !strings.HasPrefix(res.Errors[1], "line 5: ") || ins[2].ID != "long:6" {
		t.Errorf("errors %q, last id %s", res.Errors, ins[2].ID)
	}
}

// TestCorpusProperties checks what the fuzz target checks on the shared
// corpus's threatfox-ips.txt (skipped when the corpus is absent).
func TestCorpusProperties(t *testing.T) {
	fh := corpus.Open(t, "threatfox-ips.txt")
	ins, res, err := ParseList(fh, &feeds.Feed{Name: "list"}, now)
	if err != nil {
		t.Fatal(err)
	}
	feedtest.Result(t, res, len(ins))
	feedtest.Indicators(t, ins, "list")
}
