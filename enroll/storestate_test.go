package enroll

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store/sqlite"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

var storeBase = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func openSQLite(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestStoreTokensTwoNodes: a token created by one node enrolls once on
// another; racing redeems let exactly one through; expiry and revocation
// are seen by every node.
func TestStoreTokensTwoNodes(t *testing.T) {
	st := openSQLite(t)
	a := NewStoreTokens(st, fixedClock{storeBase}, nil)
	b := NewStoreTokens(st, fixedClock{storeBase.Add(time.Minute)}, nil)
	if _, _, err := a.Create("Bad Class", time.Hour); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Fatalf("Create bad class: %v, want EINVALID", err)
	}
	plain, tok, err := a.Create("camera", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Peek(plain); err != nil || got.ID != tok.ID {
		t.Fatalf("Peek on B = %+v, %v", got, err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := a
			if i%2 == 1 {
				n = b
			}
			_, errs[i] = n.Redeem(plain, "camera-x")
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else if vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
			t.Fatalf("Redeem: %v, want nil or EUNAUTHORIZED", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d redeems of one token succeeded, want 1", won)
	}
	if _, err := a.Peek(plain); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Fatalf("Peek of a used token: %v, want EUNAUTHORIZED", err)
	}
	list, _ := a.List()
	if len(list) != 1 || list[0].UsedBy != "camera-x" || list[0].Used.IsZero() {
		t.Fatalf("List = %+v, want the token used by camera-x", list)
	}

	// Expired: refused by Peek and Redeem alike.
	late := NewStoreTokens(st, fixedClock{storeBase.Add(2 * time.Hour)}, nil)
	plain2, tok2, _ := a.Create("camera", time.Hour)
	if _, err := late.Peek(plain2); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Fatalf("Peek expired: %v", err)
	}
	if _, err := late.Redeem(plain2, "c"); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Fatalf("Redeem expired: %v", err)
	}
	// Revoked on B: refused on A.
	if err := b.Revoke(tok2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Redeem(plain2, "c"); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Fatalf("Redeem revoked: %v", err)
	}
	if err := b.Revoke(tok2.ID); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Fatalf("Revoke again: %v, want ENOTFOUND", err)
	}
}

// TestStoreTokensImport: the token file of an older data dir is imported
// once with its uses; one written later (vigil ctl --data-dir) is
// imported when its token is first presented.
func TestStoreTokensImport(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, TokensFile)
	clock := fixedClock{storeBase}
	f, _ := OpenTokenStore(path, clock)
	used, _, _ := f.Create("camera", time.Hour)
	if _, err := f.Redeem(used, "camera-1"); err != nil {
		t.Fatal(err)
	}
	fresh, freshTok, _ := f.Create("sensor", time.Hour)
	gone, goneTok, _ := f.Create("sensor", time.Hour)
	if err := f.Revoke(goneTok.ID); err != nil {
		t.Fatal(err)
	}

	s := NewStoreTokens(openSQLite(t), clock, nil)
	if n, err := s.ImportFile(path); err != nil || n != 2 {
		t.Fatalf("ImportFile = %d, %v; want 2", n, err)
	}
	if _, err := os.Stat(path + ImportedSuffix); err != nil {
		t.Fatalf("the file was not renamed: %v", err)
	}
	if n, err := s.ImportFile(path); err != nil || n != 0 {
		t.Fatalf("ImportFile again = %d, %v; want 0", n, err)
	}
	if _, err := s.Redeem(used, "camera-2"); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Fatalf("Redeem of a token used before the import: %v", err)
	}
	if _, err := s.Peek(gone); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Fatalf("Peek of a token revoked before the import: %v", err)
	}
	if got, err := s.Redeem(fresh, "sensor-1"); err != nil || got.ID != freshTok.ID {
		t.Fatalf("Redeem of an imported token = %+v, %v", got, err)
	}

	// Written while the server runs: unknown until presented.
	s.ImportOnMiss(path)
	f2, _ := OpenTokenStore(path, clock)
	late, lateTok, _ := f2.Create("camera", time.Hour)
	if got, err := s.Peek(late); err != nil || got.ID != lateTok.ID {
		t.Fatalf("Peek of a token written to the file later = %+v, %v", got, err)
	}
	if _, err := s.Redeem(late, "camera-3"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Peek("vge_nonsense"); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Fatalf("Peek of an unknown token: %v", err)
	}
}

func testCert(cn string, serial int64, notBefore time.Time) *x509.Certificate {
	return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, NotBefore: notBefore}
}

// TestStoreRevocations: a device or serial revoked on one node is refused
// on another; a certificate issued after a device's revocation is not;
// the revocation file of an older data dir is imported once.
func TestStoreRevocations(t *testing.T) {
	st := openSQLite(t)
	dir := t.TempDir()
	path := filepath.Join(dir, RevokedFile)
	f, _ := OpenRevocations(path, fixedClock{storeBase})
	if err := f.RevokeSerial("ff"); err != nil {
		t.Fatal(err)
	}
	a := NewStoreRevocations(st, fixedClock{storeBase.Add(time.Hour)}, nil)
	b := NewStoreRevocations(st, fixedClock{storeBase.Add(time.Hour)}, nil)
	if n, err := b.ImportFile(path); err != nil || n != 1 {
		t.Fatalf("ImportFile = %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("revocation file still there after the import: %v", err)
	}
	old := testCert("cam-1", 1, storeBase)
	if err := b.Check(old); err != nil {
		t.Fatalf("Check before revocation: %v", err)
	}
	if err := a.RevokeDevice("cam-1"); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeDevice(""); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Fatalf("RevokeDevice empty: %v", err)
	}
	if err := b.Check(old); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Fatalf("Check of a revoked device on the other node: %v", err)
	}
	if err := b.VerifyPeerCertificate(nil, [][]*x509.Certificate{{old}}); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Fatalf("VerifyPeerCertificate of a revoked device: %v", err)
	}
	if err := b.Check(testCert("cam-1", 2, storeBase.Add(2*time.Hour))); err != nil {
		t.Fatalf("Check of a certificate issued after the revocation: %v", err)
	}
	if err := b.Check(testCert("cam-2", 0xff, storeBase)); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Fatalf("Check of an imported revoked serial: %v", err)
	}
	if err := b.Check(testCert("ff", 3, storeBase)); err != nil {
		t.Fatalf("Check of a device named like a revoked serial: %v", err)
	}
	st.Close()
	if err := b.Check(testCert("cam-3", 4, storeBase)); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Fatalf("Check with the store closed: %v, want EUNAUTHORIZED (fail closed)", err)
	}
}

// BenchmarkStoreRevocationsCheck is the cost a device request pays for
// the shared revocation list: one indexed read of the store (SQLite).
func BenchmarkStoreRevocationsCheck(b *testing.B) {
	st, err := sqlite.Open(filepath.Join(b.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r := NewStoreRevocations(st, fixedClock{storeBase}, nil)
	for i := range 1000 {
		if err := r.RevokeDevice(fmt.Sprintf("cam-%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	cert := testCert("cam-ok", 12345, storeBase)
	for b.Loop() {
		if err := r.Check(cert); err != nil {
			b.Fatal(err)
		}
	}
}
