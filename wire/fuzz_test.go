package wire

import (
	"bytes"
	"testing"
)

// checkStable decodes data; when it decodes, the report must encode, and
// decoding that encoding must give the same encoding again. The valid part
// of the report must survive the other format unchanged too.
func checkStable(t *testing.T, f Format, data []byte) {
	r, err := DecodeReportBytes(f, data)
	if err != nil {
		return
	}
	ct := map[Format]string{FormatJSON: ContentTypeJSON, FormatXML: ContentTypeXML}
	encode := func(f Format, r *Report) []byte {
		var b bytes.Buffer
		if err := EncodeReport(&b, ct[f], r); err != nil {
			t.Fatalf("decoded report does not encode as %s: %v", f, err)
		}
		return b.Bytes()
	}
	valid, _ := r.Filter()
	if f == FormatXML && valid == nil {
		// XML carries NaN and infinities that JSON cannot; only the
		// validated part is held to JSON.
		b1 := encode(FormatXML, r)
		r2, err := DecodeReportBytes(FormatXML, b1)
		if err != nil {
			t.Fatalf("re-decode: %v\n%s", err, b1)
		}
		if b2 := encode(FormatXML, r2); !bytes.Equal(b1, b2) {
			t.Fatalf("unstable:\n%s\n%s", b1, b2)
		}
		return
	}
	if f == FormatJSON {
		b1 := encode(FormatJSON, r)
		r2, err := DecodeReportBytes(FormatJSON, b1)
		if err != nil {
			t.Fatalf("re-decode: %v\n%s", err, b1)
		}
		if b2 := encode(FormatJSON, r2); !bytes.Equal(b1, b2) {
			t.Fatalf("unstable:\n%s\n%s", b1, b2)
		}
	}
	if valid == nil {
		return
	}
	want := encode(FormatJSON, valid)
	for _, g := range []Format{FormatJSON, FormatXML} {
		b := encode(g, valid)
		r3, err := DecodeReportBytes(g, b)
		if err != nil {
			t.Fatalf("valid report does not re-decode from %s: %v\n%s", g, err, b)
		}
		if err := r3.Validate(); err != nil {
			t.Fatalf("valid report invalid after %s: %v", g, err)
		}
		if got := encode(FormatJSON, r3); !bytes.Equal(got, want) {
			t.Fatalf("valid report changed through %s:\n%s\n%s", g, got, want)
		}
	}
}

func FuzzDecodeJSON(f *testing.F) {
	f.Add(readFile(f, "testdata/report.json"))
	f.Add([]byte(`{"version":"1","device_id":"d","time":"2026-01-01T00:00:00Z","health":{"cpu_pct":1,"memory_pct":2,"disk_pct":3,"metrics":{"a":1e308}}}`))
	f.Add([]byte(`{"version":"1","device_id":"d","time":"2026-01-01T00:00:00+23:59","events":[{"time":"2026-01-01T00:00:00Z","kind":"auth","fields":{"a":"\u0000\ud800"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkStable(t, FormatJSON, data)
	})
}

func FuzzDecodeXML(f *testing.F) {
	f.Add(readFile(f, "testdata/report.xml"))
	f.Add([]byte(`<!DOCTYPE r [<!ENTITY a "b">]><report version="1">&a;</report>`))
	f.Add([]byte("<report version=\"1\"><device_id>d</device_id><time>2026-01-01T00:00:00Z</time><health><cpu_pct>NaN</cpu_pct><metrics><metric name=\"x\" value=\"-0\"/></metrics></health><events><event><fields><field name=\"a\">\r\n&lt;&#x9;</field></fields></event></events></report>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkStable(t, FormatXML, data)
	})
}
