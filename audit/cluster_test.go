package audit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/store/postgres"
)

// openPostgresPair opens two handles on one fresh schema of the database
// VIGIL_TEST_POSTGRES_URL names, as two nodes of a cluster do, both
// sealing with key; the schema is dropped after the test.
func openPostgresPair(t *testing.T, key []byte) (*postgres.Store, *postgres.Store) {
	t.Helper()
	url := os.Getenv("VIGIL_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("VIGIL_TEST_POSTGRES_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "vigil_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var nodes [2]*postgres.Store
	for i := range nodes {
		s, err := postgres.Open(ctx, url, postgres.Options{Schema: schema, AuditKey: key})
		if err != nil {
			t.Fatalf("open node %d: %v", i, err)
		}
		nodes[i] = s
		t.Cleanup(func() { s.Close() })
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("cannot drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		c.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	})
	return nodes[0], nodes[1]
}

// TestTwoNodesAppendOneChain appends from two nodes on one PostgreSQL at
// once, several writers each, and checks that the trail is one chain:
// every record stored, numbered 1..n without gaps, each linked to the one
// before and sealed with the shared key.
func TestTwoNodesAppendOneChain(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	a, b := openPostgresPair(t, key)
	const writers, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers*each)
	for n, st := range []*postgres.Store{a, b} {
		rec := audit.NewRecorder(st, nil, nil)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					if _, err := rec.Record(t.Context(), fmt.Sprintf("node-%d", n), "test.append", fmt.Sprintf("w%d-%d", w, i), ""); err != nil {
						errs <- err
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for n, st := range []*postgres.Store{a, b} {
		rep, err := audit.VerifyWith(t.Context(), st, audit.VerifyOptions{Key: key})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK || rep.Records != 2*writers*each || rep.LastSeq != 2*writers*each || rep.Sealed != 2*writers*each {
			t.Fatalf("trail as node %d reads it: %s", n, rep)
		}
	}
}
