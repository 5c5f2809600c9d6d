package kev

import (
	"testing"
	"time"

	"github.com/vigil-iot/vigil/feeds/internal/corpus"
)

func TestParseCatalog(t *testing.T) {
	fh := corpus.Open(t, "kev.json")
	ks, res, err := Parse(fh)
	if err != nil {
		t.Fatal(err)
	}
	// The catalog header says count 1404.
	if res.Imported != 1404 || res.Rejected != 0 || len(ks) != 1404 {
		t.Fatalf("result %+v", res)
	}
	k := ks[0]
	if k.CVE != "CVE-2025-48384" || k.VendorProject != "Git" || !k.DueDate.Equal(time.Date(2025, 9, 15, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("first entry %+v", k)
	}
	ransom := 0
	for _, k := range ks {
		if k.KnownRansomware {
			ransom++
		}
	}
	if ransom == 0 || ransom == len(ks) {
		t.Errorf("%d of %d with known ransomware use", ransom, len(ks))
	}
}
