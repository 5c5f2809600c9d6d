package wire

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// canonical returns the JSON encoding of r, to compare reports.
func canonical(t testing.TB, r *Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := EncodeReport(&b, ContentTypeJSON, r); err != nil {
		t.Fatalf("cannot encode: %v", err)
	}
	return b.String()
}

func TestDecodeExamples(t *testing.T) {
	rj, err := DecodeReport("application/json; charset=utf-8", bytes.NewReader(readFile(t, "testdata/report.json")), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	rx, err := DecodeReport("application/xml", bytes.NewReader(readFile(t, "testdata/report.xml")), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Report{rj, rx} {
		if err := r.Validate(); err != nil {
			t.Fatalf("example does not validate: %v", err)
		}
	}
	if a, b := canonical(t, rj), canonical(t, rx); a != b {
		t.Fatalf("JSON and XML examples differ:\n%s\n%s", a, b)
	}
	if rj.DeviceID != "cam-0042" || rj.Health.CPU != 37.5 || *rj.Health.Temperature != 54.5 ||
		rj.Health.Metrics["fan_rpm"] != 1200 || len(rj.Inventory.Software) != 2 ||
		rj.Network.Listening[1].Port != 554 || rj.Events[0].Fields["user.name"] != "root" ||
		!rj.Events[0].Time.Equal(time.Date(2026, 11, 22, 3, 14, 51, 250e6, time.UTC)) {
		t.Fatalf("example decoded wrong: %+v", rj)
	}
	if got := rx.Network.Interfaces[0].Addresses[1]; got != "fe80::42:acff:fe11:2/64" {
		t.Fatalf("XML address = %q", got)
	}
}

func TestRoundTrip(t *testing.T) {
	r, err := DecodeReportBytes(FormatJSON, readFile(t, "testdata/report.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := canonical(t, r)
	for _, ct := range []string{ContentTypeJSON, ContentTypeXML} {
		var b bytes.Buffer
		if err := EncodeReport(&b, ct, r); err != nil {
			t.Fatal(err)
		}
		r2, err := DecodeReport(ct, &b, 0)
		if err != nil {
			t.Fatalf("%s: %v\n%s", ct, err, b.String())
		}
		if got := canonical(t, r2); got != want {
			t.Fatalf("%s round trip differs:\n%s\n%s", ct, got, want)
		}
	}
	// An empty version is written as the current one.
	r.Version = ""
	var b bytes.Buffer
	if err := EncodeReport(&b, "text/xml", r); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeReport("text/xml", &b, 0); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeErrors(t *testing.T) {
	f := func(ct, body, want string) {
		t.Helper()
		_, err := DecodeReport(ct, strings.NewReader(body), 4096)
		if err == nil {
			t.Fatalf("%s %q: no error, want %q", ct, body, want)
		}
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("%s %q:\n got %q\nwant %q", ct, body, err.Error(), want)
		}
	}
	const head = `"version":"1","device_id":"d1","time":"2026-01-01T00:00:00Z"`
	const js = "application/json"
	f(js, `{`+head+`,"health":{"cpu_pct":"high"}}`, `health.cpu_pct: cannot use a JSON string as a number`)
	f(js, `{`+head+`,"events":[{},{"time":"yesterday","kind":"auth"}]}`, `events[1].time: cannot parse "yesterday" as an RFC 3339 time`)
	f(js, `{`+head+`,"events":[{"time":"2026-01-01T00:00:00Z","kind":7}]}`, `events[0].kind: cannot use a JSON number as a string`)
	f(js, `{"version":"1","time":12}`, `time: want an RFC 3339 time string, have 12`)
	f(js, `{`+head+`,"network":{"listening":[{"port":70000}]}}`, `network.listening.port: cannot use a JSON number 70000 as a whole number ≥ 0`)
	f(js, `{`+head, `offset 61: unexpected end of JSON input`)
	f(js, `{`+head+`} trailing`, `invalid character 't' after top-level value`)
	f(js, `{"device_id":"d1"}`, `version: missing`)
	f(js, `{"version":"2"}`, `version: unsupported version "2": this server reads version 1`)
	f(js, `{"version":"1","device_id":"`+strings.Repeat("x", 5000)+`"}`, `body is larger than the limit of 4096 bytes`)
	f("text/plain", `{}`, `unsupported content type`)
	f("application/json; charset=latin1", `{}`, `charset "latin1"`)
	f("", `{}`, `unsupported content type`)

	const xm = "application/xml"
	f(xm, `<?xml version="1.0"?><!DOCTYPE report [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><report version="1"><device_id>&b;</device_id></report>`, `line 1: DOCTYPE and ENTITY declarations are not allowed`)
	f(xm, `<?xml version="1.0"?><!DOCTYPE report SYSTEM "file:///etc/passwd"><report version="1"/>`, `DOCTYPE and ENTITY declarations are not allowed`)
	f(xm, "<report version=\"1\">\n<device_id>&xxe;</device_id></report>", `line 2: invalid character entity &xxe;`)
	f(xm, "<report version=\"1\">\n<health>\n<cpu_pct>high</cpu_pct></health></report>", `line 3: health.cpu_pct: cannot parse "high" as a number`)
	f(xm, `<report version="1"><events><event><time>2026-01-01T00:00:00Z</time></event><event><time>yesterday</time></event></events></report>`, `events[1].time: cannot parse "yesterday" as an RFC 3339 time`)
	f(xm, `<report version="1"><health><metrics><metric name="a" value="1"/><metric name="b" value="x"/></metrics></health></report>`, `health.metrics[1]: metric "b": cannot parse value "x" as a number`)
	f(xm, `<report version="1"><network><listening><listener><port>70000</port></listener></listening></network></report>`, `network.listening[0].port: "70000" is out of range`)
	f(xm, `<report version="1"><device_id>d</device_id>`, `unexpected EOF`)
	f(xm, `<report version="1"></report><report/>`, `unexpected element after </report>`)
	f(xm, `<report version="1"></report>junk`, `unexpected text after </report>`)
	f(xm, `<agent version="1"></agent>`, `expected element type <report> but have <agent>`)
	f(xm, `<?xml version="1.0" encoding="ISO-8859-1"?><report version="1"/>`, `ISO-8859-1`)
	f(xm, `<report><device_id>d</device_id></report>`, `version: missing`)
	f(xm, `<report version="1"><device_id>a</device_id><device_id>`+strings.Repeat("x", 5000)+`</device_id></report>`, `larger than the limit`)
}

func TestDecodeErrorTypes(t *testing.T) {
	_, err := DecodeReport("application/xml", strings.NewReader(`<!DOCTYPE x><report version="1"/>`), 0)
	if !errors.Is(err, ErrDoctype) {
		t.Fatalf("err = %v, want ErrDoctype", err)
	}
	var de *DecodeError
	if !errors.As(err, &de) || de.Format != FormatXML {
		t.Fatalf("err = %#v, want *DecodeError", err)
	}
	_, err = DecodeReport("application/json", strings.NewReader(`{"version":"1"}`), 5)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	_, err = DecodeReport("image/png", strings.NewReader(``), 5)
	if !errors.Is(err, ErrUnsupportedType) {
		t.Fatalf("err = %v, want ErrUnsupportedType", err)
	}
}

func TestParseContentType(t *testing.T) {
	f := func(ct string, want Format) {
		t.Helper()
		got, err := ParseContentType(ct)
		if want == "" {
			if err == nil {
				t.Fatalf("%q: got %q, want an error", ct, got)
			}
			return
		}
		if err != nil || got != want {
			t.Fatalf("%q: got %q, %v; want %q", ct, got, err, want)
		}
	}
	f("application/json", FormatJSON)
	f("Application/JSON; charset=UTF-8", FormatJSON)
	f("application/vnd.vigil.report+json", FormatJSON)
	f("application/xml", FormatXML)
	f("text/xml; charset=utf-8", FormatXML)
	f("application/x-ndjson", "")
	f("text/xml; charset=utf-16", "")
	f("", "")
}

func BenchmarkDecodeReport(b *testing.B) {
	for _, c := range []struct {
		name string
		f    Format
		file string
	}{{"json", FormatJSON, "testdata/report.json"}, {"xml", FormatXML, "testdata/report.xml"}} {
		data := readFile(b, c.file)
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				r, err := DecodeReportBytes(c.f, data)
				if err != nil {
					b.Fatal(err)
				}
				if _, probs := r.Filter(); len(probs) != 0 {
					b.Fatal(probs)
				}
			}
		})
	}
}
