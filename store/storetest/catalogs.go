package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

func testCatalogs(t *testing.T, s store.Store) {
	v0, err := s.CatalogVersion(ctx(t), "intel")
	must(t, err, "CatalogVersion of an empty catalog")
	if v0 != 0 {
		t.Fatalf("CatalogVersion of an empty catalog = %d, want 0", v0)
	}
	_, err = s.PutCatalogEntry(ctx(t), "", "x", nil)
	wantCode(t, err, vigil.EINVALID, "PutCatalogEntry without a kind")
	_, err = s.PutCatalogEntry(ctx(t), "intel", "", nil)
	wantCode(t, err, vigil.EINVALID, "PutCatalogEntry without a name")

	big := bytes.Repeat([]byte(`{"a":"\u0000 \\ "}`), 100000) // documents are bytes, whole
	v1, err := s.PutCatalogEntry(ctx(t), "intel", "b-feed", big)
	must(t, err, "PutCatalogEntry")
	v2, err := s.PutCatalogEntry(ctx(t), "intel", "a-feed", []byte("one"))
	must(t, err, "PutCatalogEntry")
	_, err = s.PutCatalogEntry(ctx(t), "vuln", "a-feed", []byte("other kind"))
	must(t, err, "PutCatalogEntry of another kind")
	v3, err := s.PutCatalogEntry(ctx(t), "intel", "a-feed", []byte("two"))
	must(t, err, "PutCatalogEntry replacing")
	if !(v0 < v1 && v1 < v2 && v2 < v3) {
		t.Fatalf("versions %d %d %d %d do not grow", v0, v1, v2, v3)
	}
	list, v, err := s.ListCatalogEntries(ctx(t), "intel")
	must(t, err, "ListCatalogEntries")
	if v != v3 || len(list) != 2 || list[0].Name != "a-feed" || string(list[0].Doc) != "two" || list[0].Version != v3 ||
		list[1].Name != "b-feed" || !bytes.Equal(list[1].Doc, big) || list[1].Version != v1 {
		t.Fatalf("ListCatalogEntries = %d entries at version %d (want 2 at %d)", len(list), v, v3)
	}
	_, err = s.DeleteCatalogEntry(ctx(t), "intel", "nope")
	wantCode(t, err, vigil.ENOTFOUND, "DeleteCatalogEntry of an unknown entry")
	v4, err := s.DeleteCatalogEntry(ctx(t), "intel", "b-feed")
	must(t, err, "DeleteCatalogEntry")
	if got, err := s.CatalogVersion(ctx(t), "intel"); err != nil || got != v4 || v4 <= v3 {
		t.Fatalf("CatalogVersion after a delete = %d, %v; want %d > %d", got, err, v4, v3)
	}
	list, _, err = s.ListCatalogEntries(ctx(t), "intel")
	must(t, err, "ListCatalogEntries")
	if len(list) != 1 || list[0].Name != "a-feed" {
		t.Fatalf("ListCatalogEntries after a delete = %+v", list)
	}
	other, _, err := s.ListCatalogEntries(ctx(t), "vuln")
	must(t, err, "ListCatalogEntries of another kind")
	if len(other) != 1 || string(other[0].Doc) != "other kind" {
		t.Fatalf("ListCatalogEntries(vuln) = %+v", other)
	}
}

// testClaimsConcurrent: of writers claiming the same keys at once, one
// wins each key.
func testClaimsConcurrent(t *testing.T, s store.Store) {
	const writers, keys = 4, 50
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  = map[string]int{}
		errs []error
	)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				key := fmt.Sprintf("dev-1|CVE-2026-%04d", k)
				ok, err := s.Claim(ctx(t), "vuln-alerted", key, base)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else if ok {
					won[key]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("Claim: %v", errs[0])
	}
	for k := range keys {
		if key := fmt.Sprintf("dev-1|CVE-2026-%04d", k); won[key] != 1 {
			t.Fatalf("%s claimed %d times, want once", key, won[key])
		}
	}
	ok, err := s.Claim(ctx(t), "other", "dev-1|CVE-2026-0000", base.Add(time.Hour))
	if err != nil || !ok {
		t.Fatalf("Claim of the same key in another kind = %v, %v; want true", ok, err)
	}
	claims, err := s.Claims(ctx(t), "vuln-alerted")
	must(t, err, "Claims")
	if len(claims) != keys || !claims["dev-1|CVE-2026-0049"].Equal(base) {
		t.Fatalf("Claims = %d keys (CVE-2026-0049 at %v), want %d at %v", len(claims), claims["dev-1|CVE-2026-0049"], keys, base)
	}
	other, err := s.Claims(ctx(t), "other")
	must(t, err, "Claims")
	if len(other) != 1 || !other["dev-1|CVE-2026-0000"].Equal(base.Add(time.Hour)) {
		t.Fatalf("Claims(other) = %v", other)
	}
}
