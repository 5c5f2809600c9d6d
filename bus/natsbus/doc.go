// Package natsbus implements bus.Bus on NATS JetStream, with an embedded
// server (the default: in-process, JetStream on disk under the data dir) or
// an external server or cluster (Config.URL). Both go through the same code
// once connected, and both work with nats-server 2.9 and later: the package
// uses one filter subject per consumer, no stream metadata and no
// per-message TTL.
//
// # Subjects and streams
//
// With the default prefix "vigil":
//
//	vigil.events.<partition>  stream VIGIL_EVENTS  partition = bus.Partition(device id, Partitions)
//	vigil.alerts              stream VIGIL_ALERTS
//
// The prefix is configurable (Config.Prefix) so that several Vigil
// instances, or tests, share one server without colliding.
//
// One message carries many events: PublishEvents groups a call's events by
// partition and encodes each group as one message, split only when it
// would exceed the server's max payload. Messages of one partition go out
// in order through a small window (two awaiting acknowledgement); what
// concurrent calls submit meanwhile is merged into the next message (group
// commit), so many small calls under load still make few large messages.
// Batching is what lets the bus carry hundreds of thousands of events per
// second: per-message costs (store, delivery, acknowledgement, removal)
// dominate, not per-event ones. Events are encoded with a
// compact binary codec (codec.go) that keeps every field of vigil.Event;
// alerts, which are few, are a JSON array per message.
//
// The events stream is file-backed and bounded (MaxEventBytes, MaxEventAge)
// with the discard-new policy: when it is full, publishing fails with
// bus.ErrBackpressure rather than dropping old events. When Config.Groups
// names the consumer groups, the stream uses interest retention: an event
// is deleted once every group has acknowledged it, so the bound limits the
// backlog of unprocessed events, and Open creates the groups' consumers so
// that nothing published before a group starts is lost. Without Groups the
// stream uses limits retention and keeps events until they age out.
// The alerts stream always uses limits retention.
//
// # Consumers and delivery
//
// A consumer group is one durable pull consumer per partition, named
// <group>-p<partition>, filtered on that partition's subject (alerts: one
// consumer named <group>). ConsumeEvents runs one worker per partition: it
// fetches messages in stream order, hands the events of the messages at
// hand (waiting up to Linger, 2ms, for more when there are few) to the
// handler in one call, and on success acknowledges each message (explicit
// ack policy) and waits for the server's confirmation of the last. Ack-all
// would be cheaper but wrong after a crash: the messages in flight come
// back only after AckWait while newer ones are delivered at once, and
// acknowledging a newer one would silently acknowledge the older ones too. On a handler error the worker hands the same
// events to the handler again after a delay that doubles with consecutive
// failures (RetryDelay up to MaxRetryDelay), telling the server meanwhile
// that the messages are in progress, so the batch is handled before
// anything newer: a partition's events are handled in publish order. (A
// negative acknowledgement with a delay would let newer messages overtake
// the batch.) If the process dies, the server redelivers the unacknowledged
// messages after AckWait; when a consumer stops, it negatively acknowledges
// what it received and did not handle, so the next one gets it at once.
// A message that cannot be decoded is logged, counted and skipped.
//
// Run one ConsumeEvents per group at a time: two processes consuming the
// same group would split each partition between them.
//
// Delivery is at least once. PublishEvents returns nil only when the
// server has stored every message (in the page cache; set SyncAlways to
// fsync each write). A handler may see a batch again when the process dies
// after handling it but before the acknowledgement reached the server, or
// when it runs longer than AckWait; consumers deduplicate by event id.
// A publish that fails may have stored part of the batch, so a retry may
// duplicate events; DedupWindow makes the server drop a message that a
// retry sends again (and turns off the merging of concurrent calls, which
// would make a retried message differ).
//
// # Write faults
//
// WriteErr tells whether the bus can take events (the server's /readyz
// uses it). nats-server keeps a stream's write error (a full or
// unwritable disk) until it restarts, and answers no publish meanwhile; so
// the bus checks its embedded server every HealthInterval and after a
// failed publish, and once a probe write in DataDir succeeds it restarts
// that server in place on the same store dir and address. The client
// reconnects by itself, the streams and consumers come back from disk
// with every acknowledged message, and consumers fetch again.
//
// # Metrics
//
//	vigil_bus_published_total{kind}             events, alerts stored
//	vigil_bus_publish_errors_total{kind,reason} backpressure, invalid, error
//	vigil_bus_consumed_total{kind,group}        handled and acknowledged
//	vigil_bus_handler_errors_total{kind,group}  failed handler calls (retried)
//	vigil_bus_bad_messages_total{kind,group}    undecodable messages skipped
//	vigil_bus_lag{group,partition}              event messages not yet delivered
//	vigil_bus_alert_lag{group}                  alert messages not yet delivered
//
// The lag gauges are set from every handled message and sampled from the
// server every LagInterval; they exist while the group consumes.
//
// # What it must not do
//
// This package knows nothing of what events mean: no filtering, no
// enrichment, no detection. It does not retry publishes itself (the caller
// decides, typically by answering 429) and does not start the handlers of
// one partition concurrently.
package natsbus
