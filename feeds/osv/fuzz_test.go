package osv

import (
	"bytes"
	"testing"

	"github.com/vigil-iot/vigil/feeds/internal/corpus"
	"github.com/vigil-iot/vigil/feeds/internal/feedtest"
	"github.com/vigil-iot/vigil/vuln"
)

const forms = `{"vulns": [
	{"id": "DSA-1", "aliases": ["CVE-2024-1"], "affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"},
		"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.13-1~deb12u1"}]}]}]},
	{"id": "X-2", "affected": [{"package": {"ecosystem": "Nowhere", "name": "x"}, "versions": ["1"]}]},
	{"id": "X-3", "withdrawn": "2024-01-01T00:00:00Z"},
	{"id": "GHSA-x", "affected": [{"package": {"ecosystem": "Go", "name": "github.com/x/y"},
		"ranges": [{"type": "SEMVER", "events": [{"introduced": "1.2.0"}, {"last_affected": "1.4.1"}]}, {"type": "GIT", "events": [{"introduced": "abc"}]}]}]}
]}`

const record = `{"schema_version": "1.6.0", "id": "CGA-224q-ccj5-2p53", "aliases": ["CVE-2025-32464"], "published": "2025-04-10T00:00:00Z", "modified": "2025-04-11T00:00:00Z",
	"summary": "haproxy: heap overflow", "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
	"affected": [{"package": {"ecosystem": "Chainguard", "name": "haproxy-2.2", "purl": "pkg:apk/chainguard/haproxy-2.2"},
		"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.2.34-r0"}, {"introduced": "2.3"}, {"limit": "2.4"}]}]},
		{"package": {"ecosystem": "npm", "name": "@scope/pkg"}, "versions": ["1.0.0"]},
		{"package": {"ecosystem": "PyPI", "name": "a?b#c@d"}, "versions": ["1"]}],
	"references": [{"type": "WEB", "url": "https://www.haproxy.org/"}]}`

// FuzzParse checks that Parse never panics and that what it returns holds
// together: an error (saying what it cannot do) comes with no advisories,
// the result counts what was returned and has one error per rejection, and
// every advisory has an id, source osv, a score in 0..10 and names affected
// packages by purls that read back the same, as the index needs.
func FuzzParse(f *testing.F) {
	f.Add([]byte(forms))
	f.Add([]byte(record))
	f.Add([]byte("[" + record + "," + record + "]"))
	for _, s := range feedtest.EdgeJSON {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"vulns": null}`))
	f.Add([]byte(`{"vulns": [1, "x", null, {"id": 5}, {"id": ""}]}`))
	f.Add([]byte(`[{"id": "X", "affected": [{"package": {"ecosystem": "Debian", "name": "a b/c%zz"}, "versions": ["1"]}]}]`))
	f.Add([]byte(`[{"id": "X", "affected": [{"package": {"purl": "pkg:deb/debian/x?a=%zz"}, "ranges": [{"events": [{"fixed": "1"}, {"introduced": "0", "fixed": "2"}]}]}]}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ads, res, err := Parse(bytes.NewReader(data))
		feedtest.Failed(t, err, len(ads), res)
		feedtest.Result(t, res, len(ads))
		feedtest.Advisories(t, ads, vuln.SourceOSV, false)
	})
}

// TestCorpusProperties checks what the fuzz target checks on the shared
// corpus's osv-sample.json (skipped when the corpus is absent).
func TestCorpusProperties(t *testing.T) {
	fh := corpus.Open(t, "osv-sample.json")
	ads, res, err := Parse(fh)
	if err != nil {
		t.Fatal(err)
	}
	feedtest.Result(t, res, len(ads))
	feedtest.Advisories(t, ads, vuln.SourceOSV, false)
}
