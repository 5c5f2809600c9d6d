// Package natstest helps tests that run on an external NATS JetStream
// (VIGIL_TEST_NATS_URL) share it without seeing each other's streams.
package natstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// URL returns the external server's URL (VIGIL_TEST_NATS_URL) or skips
// the test.
func URL(t testing.TB) string {
	url := os.Getenv("VIGIL_TEST_NATS_URL")
	if url == "" {
		t.Skip("VIGIL_TEST_NATS_URL is not set (e.g. nats://127.0.0.1:4222 with JetStream enabled)")
	}
	return url
}

// UniquePrefix returns a bus prefix no other test run uses, and deletes
// its streams on the server at url when t ends (after the cleanups
// registered later, so after a bus opened later is closed).
func UniquePrefix(t testing.TB, url string) string {
	t.Helper()
	var r [4]byte
	rand.Read(r[:])
	prefix := "vigiltest-" + hex.EncodeToString(r[:])
	t.Cleanup(func() {
		nc, err := nats.Connect(url)
		if err != nil {
			t.Errorf("cannot connect to clean up: %v", err)
			return
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, kind := range []string{"_EVENTS", "_ALERTS"} {
			name := strings.ToUpper(prefix) + kind
			if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				t.Errorf("cannot delete stream %s: %v", name, err)
			}
		}
		// Key-value buckets of Bus.KeyValue (the cluster's leases and
		// checkpoints).
		for _, kind := range []string{"_CLUSTER", "_CHECKPOINTS"} {
			name := strings.ToUpper(prefix) + kind
			if err := js.DeleteKeyValue(ctx, name); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
				t.Errorf("cannot delete key-value bucket %s: %v", name, err)
			}
		}
	})
	return prefix
}
