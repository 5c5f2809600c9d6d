package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// CheckpointBucket is the name of the key-value bucket of detection
// checkpoints (natsbus prefixes it: VIGIL_CHECKPOINTS). It has no TTL.
const CheckpointBucket = "CHECKPOINTS"

// Checkpoints keeps the state of a stage's partitions in a JetStream
// key-value bucket, replicated like the streams: the node that takes a
// partition over restores what its previous owner saved. Key
// <name>.p<partition> (the detection stage's name is its consumer group,
// "detect"); a value is at most the server's max payload (1 MiB by
// default).
type Checkpoints struct {
	KV jetstream.KeyValue
}

// Load returns the state saved for a partition, nil when none.
func (c Checkpoints) Load(ctx context.Context, name string, partition int) ([]byte, error) {
	e, err := c.KV.Get(ctx, checkpointKey(name, partition))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot load checkpoint of %s partition %d: %w", name, partition, err)
	}
	return e.Value(), nil
}

// Save replaces the state saved for a partition.
func (c Checkpoints) Save(ctx context.Context, name string, partition int, state []byte) error {
	if _, err := c.KV.Put(ctx, checkpointKey(name, partition), state); err != nil {
		return fmt.Errorf("cannot save checkpoint of %s partition %d: %w", name, partition, err)
	}
	return nil
}

func checkpointKey(name string, partition int) string {
	return keyPart(name) + ".p" + strconv.Itoa(partition)
}
