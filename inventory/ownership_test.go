package inventory_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/inventory"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/store/postgres"
)

// openPostgres opens a store in a fresh schema, dropped after the test;
// it skips the test when VIGIL_TEST_POSTGRES_URL is not set.
func openPostgres(t testing.TB) store.Store {
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
	st, err := postgres.Open(ctx, url, postgres.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("cannot drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("cannot drop schema %s: %v", schema, err)
		}
	})
	return st
}

func TestOperatorFieldsSurviveReportsSQLite(t *testing.T) {
	testOperatorFieldsSurviveReports(t, openStore(t, ""))
}

func TestOperatorFieldsSurviveReportsPostgres(t *testing.T) {
	testOperatorFieldsSurviveReports(t, openPostgres(t))
}

// testOperatorFieldsSurviveReports: a device is tagged safety-critical and
// quarantined in the store after the stage has seen its first report (by
// an operator, or another node); the reports that follow, which the stage
// handles from its cache, must not take the tag or the state away, or a
// disruptive response could then run automatically. Two stages stand for
// two nodes handling the device's reports in turn.
func testOperatorFieldsSurviveReports(t *testing.T, st store.Store) {
	ctx := context.Background()
	node1, err := inventory.NewStage(nil, st, inventory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	node2, err := inventory.NewStage(nil, st, inventory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const sw = `[{"name":"busybox","version":"1.36.1"}]`
	handleOn := func(s *inventory.Stage, events ...vigil.Event) {
		t.Helper()
		if err := s.Handle(ctx, 0, events); err != nil {
			t.Fatal(err)
		}
	}
	handleOn(node1, inventoryEvent("i1", 0, "1.0.3", sw))
	handleOn(node2, inventoryEvent("i2", 1, "1.0.3", sw))

	d, err := st.GetDevice(ctx, "gw-1")
	if err != nil {
		t.Fatal(err)
	}
	d.Tags = append(d.Tags, "safety-critical", "site:plant-2")
	d.State = vigil.StateQuarantined
	if err := st.PutDevice(ctx, d); err != nil {
		t.Fatal(err)
	}

	check := func(step string, firmware string, lastSeen time.Time) {
		t.Helper()
		got, err := st.GetDevice(ctx, "gw-1")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Tags, []string{"safety-critical", "site:plant-2"}) || got.State != vigil.StateQuarantined {
			t.Fatalf("%s: tags %q state %s, want the operator's [safety-critical site:plant-2] and quarantined", step, got.Tags, got.State)
		}
		if got.Firmware != firmware || !got.LastSeen.Equal(lastSeen) {
			t.Fatalf("%s: firmware %q last seen %v, want %q %v (the report's)", step, got.Firmware, got.LastSeen, firmware, lastSeen)
		}
	}
	// A report that changes the inventory, on each node.
	handleOn(node1, inventoryEvent("i3", 2, "1.0.4", sw))
	check("firmware report on node 1", "1.0.4", t0.Add(2*time.Second))
	handleOn(node2, inventoryEvent("i4", 3, "1.0.5", sw))
	check("firmware report on node 2", "1.0.5", t0.Add(3*time.Second))
	// A health sample, and a report that only moves LastSeen on.
	handleOn(node1, health("h1", "gw-1", 60, 12))
	check("health sample", "1.0.5", t0.Add(60*time.Second))
	handleOn(node1, vigil.Event{ID: "a1", Time: t0.Add(5 * time.Minute), DeviceID: "gw-1", Source: "agent", Kind: vigil.KindAuth})
	check("last seen only", "1.0.5", t0.Add(5*time.Minute))
}
