package natsbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// KeyValue opens, creating it when missing, the JetStream key-value bucket
// <PREFIX>_<name> with the streams' replication factor: the prefix keeps
// the buckets of deployments sharing a NATS cluster apart, as it does the
// streams. A key whose last write is older than ttl is removed (ttl 0:
// never); history is one value per key. The cluster package keeps its
// member heartbeats and partition leases in one, and the detection
// checkpoints in another.
func (b *Bus) KeyValue(ctx context.Context, name string, ttl time.Duration) (kv jetstream.KeyValue, err error) {
	err = b.untilReady(ctx, "key-value bucket "+name, b.cfg.StartupWait, func(ctx context.Context) error {
		kv, err = b.keyValue(ctx, name, ttl)
		return err
	})
	return kv, err
}

func (b *Bus) keyValue(ctx context.Context, name string, ttl time.Duration) (jetstream.KeyValue, error) {
	bucket := strings.ToUpper(b.cfg.Prefix) + "_" + name
	kv, err := b.js.KeyValue(ctx, bucket)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("cannot open key-value bucket %s: %w", bucket, err)
	}
	kv, err = b.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "Vigil " + name,
		History:     1,
		TTL:         ttl,
		Replicas:    b.cfg.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = b.js.KeyValue(ctx, bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot create key-value bucket %s: %w", bucket, err)
	}
	return kv, nil
}
