package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus"
)

// headerRoom is the part of the server's max payload kept for headers.
const headerRoom = 1024

// outMsg is one message to publish: a chunk of one partition's events.
type outMsg struct {
	partition int
	subject   string
	data      []byte
	count     int
	first     string // id of the first event, for the dedup id
	hash      uint64 // of all the event ids, for the dedup id
}

// msgID is the Nats-Msg-Id of a message: the same events in the same
// order give the same id.
func (m *outMsg) msgID() string {
	return m.first + "/" + strconv.Itoa(m.count) + "/" + strconv.FormatUint(m.hash, 36)
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// PublishEvents groups the events by partition, encodes each group as one
// message (several when it is larger than the server's max payload),
// publishes all of them asynchronously and waits for every acknowledgement.
// Concurrent calls' messages for one partition are merged while earlier
// ones await their acknowledgement (see partitionQueue).
// A full stream or too many publishes in flight return an error that
// matches bus.ErrBackpressure; an event that cannot be encoded or is larger
// than a message returns an EINVALID *vigil.Error before anything is sent.
func (b *Bus) PublishEvents(ctx context.Context, events []vigil.Event) error {
	if len(events) == 0 {
		return nil
	}
	var bufs []*[]byte
	msgs, err := b.encodeEvents(events, &bufs)
	detached := false
	defer func() {
		if detached {
			return // the client may still read them
		}
		for _, p := range bufs {
			*p = (*p)[:0]
			bufPool.Put(p)
		}
	}()
	if err != nil {
		b.m.publishErrors.WithLabelValues("events", "invalid").Inc()
		return err
	}
	gen := b.publishStart()
	pieces := make([]piece, len(msgs))
	for i := range msgs {
		pieces[i] = piece{msg: msgs[i], done: make(chan struct{})}
		b.queues[msgs[i].partition].submit(&pieces[i])
	}
	var firstErr error
	for i := range pieces {
		select {
		case <-pieces[i].done:
			if firstErr == nil {
				firstErr = pieces[i].err
			}
		case <-ctx.Done():
			detached = true // the queues still hold our buffers
			return b.publishError("events", ctx.Err())
		}
	}
	b.publishDone(gen, firstErr)
	if firstErr != nil {
		return b.publishError("events", firstErr)
	}
	b.m.published.WithLabelValues("events").Add(float64(len(events)))
	return nil
}

// encodeEvents encodes events into messages, one or more per partition,
// in buffers from the pool that it appends to bufs.
func (b *Bus) encodeEvents(events []vigil.Event, bufs *[]*[]byte) ([]outMsg, error) {
	n := b.cfg.Partitions
	limit := int(b.nc.MaxPayload()) - headerRoom
	newBuf := func() []byte {
		p := bufPool.Get().(*[]byte)
		*bufs = append(*bufs, p)
		return appendHeader(*p)
	}
	keep := func(data []byte) {
		*(*bufs)[len(*bufs)-1] = data // the pool gets the grown buffer back
	}
	// Partition every event once, then encode partition by partition so
	// that each partition's events keep their order.
	parts := make([]uint16, len(events))
	counts := make([]int, n)
	for i := range events {
		p := bus.Partition(events[i].DeviceID, n)
		parts[i] = uint16(p)
		counts[p]++
	}
	dedup := b.cfg.DedupWindow > 0
	var msgs []outMsg
	for p := 0; p < n; p++ {
		if counts[p] == 0 {
			continue
		}
		cur := outMsg{partition: p, subject: b.eventsSubj + strconv.Itoa(p)}
		h := fnv.New64a()
		data := newBuf()
		finish := func() {
			putCount(data, cur.count)
			cur.data = data
			if dedup {
				cur.hash = h.Sum64()
			}
			msgs = append(msgs, cur)
			keep(data)
		}
		for i := range events {
			if int(parts[i]) != p {
				continue
			}
			e := &events[i]
			before := len(data)
			var err error
			if data, err = appendEvent(data, e); err != nil {
				keep(data)
				return nil, vigil.Errorf(vigil.EINVALID, "event %d (id %q): %v", i, e.ID, err)
			}
			if size := len(data) - before; size+headerLen > limit {
				keep(data)
				return nil, vigil.Errorf(vigil.EINVALID, "event %d (id %q) is %d bytes encoded, over the bus message limit of %d", i, e.ID, size, limit)
			}
			if len(data) > limit {
				// The event does not fit: finish the message without it
				// and start the next one with it, in a new buffer.
				ev := data[before:]
				data = data[:before]
				finish()
				data = append(newBuf(), ev...)
				cur = outMsg{partition: p, subject: cur.subject}
				h.Reset()
			}
			if cur.count == 0 {
				cur.first = e.ID
			}
			if dedup {
				h.Write([]byte(e.ID))
				h.Write([]byte{0})
			}
			cur.count++
		}
		finish()
	}
	return msgs, nil
}

// publish sends the messages asynchronously and waits for all their
// acknowledgements. detached reports that it returned (on ctx's end)
// while the client may still read some message's data.
func (b *Bus) publish(ctx context.Context, kind string, msgs []outMsg) (detached bool, err error) {
	gen := b.publishStart()
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	var firstErr error
	for i := range msgs {
		m := &nats.Msg{Subject: msgs[i].subject, Data: msgs[i].data}
		var f jetstream.PubAckFuture
		var err error
		if b.cfg.DedupWindow > 0 {
			f, err = b.js.PublishMsgAsync(m, jetstream.WithMsgID(msgs[i].msgID()))
		} else {
			f, err = b.js.PublishMsgAsync(m)
		}
		if err != nil {
			firstErr = err
			break
		}
		futures = append(futures, f)
	}
	// Wait for every publish that went out, even after an error, so that
	// no buffer is reused while the client may still resend it.
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if firstErr == nil {
				firstErr = err
			}
		case <-ctx.Done():
			return true, b.publishError(kind, ctx.Err())
		}
	}
	b.publishDone(gen, firstErr)
	if firstErr != nil {
		return false, b.publishError(kind, firstErr)
	}
	return false, nil
}

// publishError maps a publish error to bus.ErrBackpressure when the bus is
// full and counts it.
func (b *Bus) publishError(kind string, err error) error {
	if isBackpressure(err) {
		b.m.publishErrors.WithLabelValues(kind, "backpressure").Inc()
		return fmt.Errorf("%w: %w", bus.ErrBackpressure, vigil.Errorf(vigil.EBUSY, "cannot publish %s: %v", kind, err))
	}
	b.m.publishErrors.WithLabelValues(kind, "error").Inc()
	return fmt.Errorf("cannot publish %s: %w", kind, err)
}

// isBackpressure tells a full stream or a full publish window from other
// failures.
func isBackpressure(err error) bool {
	if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// JSStreamStoreFailedF (10077) carries the store's error:
		// "maximum bytes exceeded", "maximum messages exceeded", ...
		if apiErr.ErrorCode == 10077 && strings.Contains(apiErr.Description, "exceeded") {
			return true
		}
		// JSInsufficientResourcesErr (10023): the server's store is full.
		if apiErr.ErrorCode == 10023 {
			return true
		}
	}
	return false
}

// PublishAlerts publishes alerts as JSON messages on the alerts stream,
// as many alerts per message as fit, and waits for the acknowledgements.
func (b *Bus) PublishAlerts(ctx context.Context, alerts []vigil.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	limit := int(b.nc.MaxPayload()) - headerRoom
	var msgs []outMsg
	var data []byte
	cnt := 0
	h := fnv.New64a()
	var first string
	flush := func() {
		data = append(data, ']')
		msgs = append(msgs, outMsg{subject: b.alertsSubj, data: data, count: cnt, first: first, hash: h.Sum64()})
		data, cnt = nil, 0
		h.Reset()
	}
	for i := range alerts {
		j, err := json.Marshal(&alerts[i])
		if err != nil {
			b.m.publishErrors.WithLabelValues("alerts", "invalid").Inc()
			return vigil.Errorf(vigil.EINVALID, "alert %d (id %q): %v", i, alerts[i].ID, err)
		}
		if len(j)+2 > limit {
			b.m.publishErrors.WithLabelValues("alerts", "invalid").Inc()
			return vigil.Errorf(vigil.EINVALID, "alert %d (id %q) is %d bytes encoded, over the bus message limit of %d", i, alerts[i].ID, len(j), limit)
		}
		if cnt > 0 && len(data)+len(j)+2 > limit {
			flush()
		}
		if cnt == 0 {
			data = append(data, '[')
			first = alerts[i].ID
		} else {
			data = append(data, ',')
		}
		data = append(data, j...)
		h.Write([]byte(alerts[i].ID))
		h.Write([]byte{0})
		cnt++
	}
	flush()
	if _, err := b.publish(ctx, "alerts", msgs); err != nil {
		return err
	}
	b.m.published.WithLabelValues("alerts").Add(float64(len(alerts)))
	return nil
}
