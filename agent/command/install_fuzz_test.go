package command

import (
	"path/filepath"
	"strings"
	"testing"
)

// FuzzKeptProduct: the product of an update or rollback command names a
// directory under the kept-artifacts dir; whatever the server sends, that
// directory is a direct child of it, never elsewhere.
func FuzzKeptProduct(f *testing.F) {
	for _, s := range []string{"openssl", "camfw", "..", ".", "../etc", "a/b", `a\b`, "", "x y", strings.Repeat("p", 200), "/abs", "ok-1.2_3"} {
		f.Add(s)
	}
	k := Kept{Dir: "/var/lib/vigil-agent/updates"}
	f.Fuzz(func(t *testing.T, product string) {
		d, err := k.dir(product)
		if err != nil {
			return
		}
		if filepath.Dir(d) != k.Dir || filepath.Base(d) != product {
			t.Fatalf("product %q keeps its artifacts in %q, outside %s", product, d, k.Dir)
		}
	})
}
