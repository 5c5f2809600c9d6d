package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus"
)

// ConsumeEvents runs one worker per partition, each with its durable pull
// consumer <group>-p<partition>, until ctx ends. A worker fetches messages
// in stream order, merges those at hand into one handler call and, when
// the handler returns nil, acknowledges them (and all before them) and
// waits for the server to confirm. When the handler fails, the same events
// are handed to it again after a delay that grows with consecutive
// failures, before anything newer, so the partition's order holds; the
// server redelivers them if the process dies meanwhile. It returns nil
// when ctx ends (within about FetchWait; what was received and not handled
// is given back to the server at once), or an error when the bus is closed
// or a consumer cannot be created.
func (b *Bus) ConsumeEvents(ctx context.Context, group string, h bus.EventHandler) error {
	if err := checkGroup(group); err != nil {
		return err
	}
	n := b.cfg.Partitions
	workers := make([]*worker, n)
	for p := range n {
		c, err := b.eventConsumer(ctx, group, p)
		if err != nil {
			return err
		}
		dec := newDecoder()
		w := &worker{
			b: b, kind: "events", group: group, cons: c,
			log: b.log.With("kind", "events", "group", group, "partition", p),
			lag: b.m.lag.WithLabelValues(group, strconv.Itoa(p)),
			recreate: func(ctx context.Context) (jetstream.Consumer, error) {
				return b.eventConsumer(ctx, group, p)
			},
		}
		w.handle = func(ctx context.Context, msgs []jetstream.Msg) (int, error) {
			return w.handleEvents(ctx, dec, p, msgs, h)
		}
		workers[p] = w
	}
	defer func() {
		for p := range n {
			b.m.lag.DeleteLabelValues(group, strconv.Itoa(p))
		}
	}()
	return b.run(ctx, workers)
}

var _ bus.PartitionConsumer = (*Bus)(nil)

// ConsumeEventPartition runs the worker of one partition of a group, as
// ConsumeEvents runs every partition's, until ctx ends: the durable
// consumer <group>-p<partition>. A cluster node calls it for the
// partitions it owns and cancels ctx when its lease ends; it returns
// (nil) within about FetchWait, having given back to the server what it
// received and did not handle, and with no handler call running.
func (b *Bus) ConsumeEventPartition(ctx context.Context, group string, p int, h bus.EventHandler) error {
	if err := checkGroup(group); err != nil {
		return err
	}
	if p < 0 || p >= b.cfg.Partitions {
		return vigil.Errorf(vigil.EINVALID, "partition %d out of range [0, %d)", p, b.cfg.Partitions)
	}
	c, err := b.eventConsumer(ctx, group, p)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	dec := newDecoder()
	w := &worker{
		b: b, kind: "events", group: group, cons: c,
		log: b.log.With("kind", "events", "group", group, "partition", p),
		lag: b.m.lag.WithLabelValues(group, strconv.Itoa(p)),
		recreate: func(ctx context.Context) (jetstream.Consumer, error) {
			return b.eventConsumer(ctx, group, p)
		},
	}
	w.handle = func(ctx context.Context, msgs []jetstream.Msg) (int, error) {
		return w.handleEvents(ctx, dec, p, msgs, h)
	}
	defer b.m.lag.DeleteLabelValues(group, strconv.Itoa(p))
	return b.run(ctx, []*worker{w})
}

// ConsumeAlerts works as ConsumeEvents with one partition: the durable
// consumer <group> of the alerts stream.
func (b *Bus) ConsumeAlerts(ctx context.Context, group string, h bus.AlertHandler) error {
	if err := checkGroup(group); err != nil {
		return err
	}
	c, err := b.alertConsumer(ctx, group)
	if err != nil {
		return err
	}
	w := &worker{
		b: b, kind: "alerts", group: group, cons: c,
		log:      b.log.With("kind", "alerts", "group", group),
		lag:      b.m.alertLag.WithLabelValues(group),
		recreate: func(ctx context.Context) (jetstream.Consumer, error) { return b.alertConsumer(ctx, group) },
	}
	w.handle = func(ctx context.Context, msgs []jetstream.Msg) (int, error) {
		return w.handleAlerts(ctx, msgs, h)
	}
	defer b.m.alertLag.DeleteLabelValues(group)
	return b.run(ctx, []*worker{w})
}

// run runs the workers and a lag sampler until ctx ends or a worker fails.
func (b *Bus) run(ctx context.Context, workers []*worker) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for _, w := range workers {
		wg.Go(func() {
			if err := w.run(ctx); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				cancel()
			}
		})
	}
	wg.Go(func() { b.sampleLag(ctx, workers) })
	wg.Wait()
	return firstErr
}

// sampleLag sets the lag gauges from the server every LagInterval: the
// workers set them from each message too, but not while nothing flows.
func (b *Bus) sampleLag(ctx context.Context, workers []*worker) {
	t := time.NewTicker(b.cfg.LagInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, w := range workers {
			rctx, cancel := context.WithTimeout(ctx, b.cfg.LagInterval)
			info, err := w.consumer().Info(rctx)
			cancel()
			if err != nil {
				continue
			}
			w.lag.Set(float64(info.NumPending))
		}
	}
}

// worker consumes one durable consumer, one batch at a time.
type worker struct {
	b        *Bus
	kind     string // "events" or "alerts"
	group    string
	log      *slog.Logger
	lag      prometheus.Gauge
	handle   func(ctx context.Context, msgs []jetstream.Msg) (int, error)
	recreate func(ctx context.Context) (jetstream.Consumer, error)

	mu   sync.Mutex
	cons jetstream.Consumer
}

func (w *worker) consumer() jetstream.Consumer {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cons
}

// run fetches and handles batches until ctx ends (nil) or the connection
// is closed (an error).
func (w *worker) run(ctx context.Context) error {
	fetchErrors := 0
	for ctx.Err() == nil {
		batch, err := w.consumer().Fetch(w.b.cfg.FetchBatch, jetstream.FetchMaxWait(w.b.cfg.FetchWait))
		if err == nil {
			err = w.drain(ctx, batch)
		}
		if err == nil {
			fetchErrors = 0
			continue
		}
		if errors.Is(err, nats.ErrConnectionClosed) {
			return fmt.Errorf("cannot consume %s for group %s: %w", w.kind, w.group, err)
		}
		if ctx.Err() != nil {
			return nil
		}
		// The server may be restarting, or the consumer gone: wait, then
		// make sure the consumer exists.
		fetchErrors++
		d := backoff(w.b.cfg.RetryDelay, w.b.cfg.MaxRetryDelay, fetchErrors)
		w.log.Warn("cannot fetch; retrying", "err", err, "in", d)
		if !sleep(ctx, d) {
			return nil
		}
		if c, err := w.recreate(ctx); err == nil {
			w.mu.Lock()
			w.cons = c
			w.mu.Unlock()
		} else if errors.Is(err, nats.ErrConnectionClosed) {
			return fmt.Errorf("cannot consume %s for group %s: %w", w.kind, w.group, err)
		}
	}
	return nil
}

// drain handles the messages of one fetch as they arrive, merging those
// already received into one handler call of at most MaxHandlerBytes.
func (w *worker) drain(ctx context.Context, batch jetstream.MessageBatch) error {
	f := &fetch{ch: batch.Messages()}
	for {
		if len(f.queue) == 0 {
			if f.closed {
				break
			}
			select {
			case m, ok := <-f.ch:
				if !ok {
					f.closed = true
					continue
				}
				f.queue = append(f.queue, m)
			case <-ctx.Done():
				f.giveBack()
				return nil
			}
		}
		f.take()
		f.linger(w.b.cfg.Linger, w.b.cfg.MaxHandlerBytes)
		k, size := 0, 0
		for k < len(f.queue) && (k == 0 || size+len(f.queue[k].Data()) <= w.b.cfg.MaxHandlerBytes) {
			size += len(f.queue[k].Data())
			k++
		}
		if !w.handleBatch(ctx, f, f.queue[:k]) {
			f.giveBack()
			return nil
		}
		f.queue = f.queue[k:]
	}
	err := batch.Error()
	if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) {
		err = nil
	}
	return err
}

// fetch holds the messages of one fetch that are not handled yet.
type fetch struct {
	ch     <-chan jetstream.Msg
	queue  []jetstream.Msg // received, not yet handled, in stream order
	closed bool            // ch is closed
}

// take moves the messages that have arrived to the queue, without waiting.
func (f *fetch) take() {
	for !f.closed {
		select {
		case m, ok := <-f.ch:
			if !ok {
				f.closed = true
				return
			}
			f.queue = append(f.queue, m)
		default:
			return
		}
	}
}

// linger waits up to d for more messages while the fetch is open and the
// queue holds less than max bytes: a few milliseconds of latency buy much
// larger handler calls, and fewer acknowledgements, when messages are
// small and frequent.
func (f *fetch) linger(d time.Duration, max int) {
	if d <= 0 || f.closed {
		return
	}
	size := 0
	for _, m := range f.queue {
		size += len(m.Data())
	}
	if size >= max {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for size < max {
		select {
		case m, ok := <-f.ch:
			if !ok {
				f.closed = true
				return
			}
			f.queue = append(f.queue, m)
			size += len(m.Data())
		case <-t.C:
			return
		}
	}
}

// giveBack negatively acknowledges every message not handled, including
// those the fetch still delivers, so that the group's next worker gets
// them at once and first.
func (f *fetch) giveBack() {
	for _, m := range f.queue {
		_ = m.Nak()
	}
	f.queue = nil
	if !f.closed {
		for m := range f.ch {
			_ = m.Nak()
		}
		f.closed = true
	}
}

// handleBatch calls the handler until it succeeds, then acknowledges the
// batch. Between failed attempts it waits, doubling the delay from
// RetryDelay up to MaxRetryDelay, and keeps every message it holds from
// being redelivered meanwhile, so the batch is handled again before
// anything newer and the partition's order holds. If the process dies, the
// server redelivers the batch after AckWait. It returns false when ctx
// ends before the batch succeeded.
func (w *worker) handleBatch(ctx context.Context, f *fetch, msgs []jetstream.Msg) bool {
	last := msgs[len(msgs)-1]
	n := 0
	for attempt := 1; ; attempt++ {
		var err error
		stop := f.keepAlive(w.b.cfg.AckWait / 3)
		n, err = w.handle(ctx, msgs)
		stop()
		if err == nil {
			break
		}
		w.b.m.handlerErrors.WithLabelValues(w.kind, w.group).Inc()
		if ctx.Err() != nil {
			return false
		}
		d := backoff(w.b.cfg.RetryDelay, w.b.cfg.MaxRetryDelay, attempt)
		w.log.Warn("handler failed; retrying the batch", "err", err, "messages", len(msgs), "items", n, "attempt", attempt, "in", d)
		f.take()
		f.inProgress()
		if !sleep(ctx, d) {
			return false
		}
		f.take()
		f.inProgress()
	}
	// Every message is acknowledged on its own (explicit policy): with
	// ack-all, acknowledging a message would also acknowledge older ones
	// still awaiting redelivery after a crash, which this worker never
	// handled. The server processes one connection's acks in order, so
	// confirming the last one confirms the batch, and a group restarted
	// right after resumes past it.
	for _, m := range msgs[:len(msgs)-1] {
		_ = m.Ack()
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.b.cfg.PublishTimeout)
	err := last.DoubleAck(actx)
	cancel()
	if err != nil {
		w.log.Warn("cannot confirm acknowledgement; the batch may be redelivered", "err", err)
	}
	w.b.m.consumed.WithLabelValues(w.kind, w.group).Add(float64(n))
	if md, err := last.Metadata(); err == nil {
		w.lag.Set(float64(md.NumPending))
	}
	return true
}

// keepAlive tells the server every period, until stop is called, that
// the messages of the fetch are in progress: those queued and those still
// arriving, which it takes over meanwhile and queues on stop. A handler
// slower than AckWait thus does not get its batch, nor what follows it,
// redelivered while it runs. The worker must not touch f until stop.
func (f *fetch) keepAlive(period time.Duration) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	queued := f.queue
	var arrived []jetstream.Msg
	closed := f.closed
	go func() {
		defer close(exited)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			for !closed {
				select {
				case m, ok := <-f.ch:
					if !ok {
						closed = true
						continue
					}
					arrived = append(arrived, m)
					continue
				default:
				}
				break
			}
			for _, m := range queued {
				_ = m.InProgress()
			}
			for _, m := range arrived {
				_ = m.InProgress()
			}
		}
	}()
	return func() {
		close(done)
		<-exited
		f.queue = append(f.queue, arrived...)
		f.closed = closed
	}
}

// inProgress resets the server's redelivery timer of the queued messages.
func (f *fetch) inProgress() {
	for _, m := range f.queue {
		_ = m.InProgress()
	}
}

func (w *worker) handleEvents(ctx context.Context, dec *decoder, p int, msgs []jetstream.Msg, h bus.EventHandler) (int, error) {
	total := 0
	for _, m := range msgs {
		if c, err := messageCount(m.Data()); err == nil {
			total += c
		}
	}
	events := make([]vigil.Event, 0, total)
	for _, m := range msgs {
		var err error
		if events, err = dec.decode(events, m.Data()); err != nil {
			w.badMessage(m, err)
		}
	}
	if len(events) == 0 {
		return 0, nil
	}
	return len(events), h(ctx, p, events)
}

func (w *worker) handleAlerts(ctx context.Context, msgs []jetstream.Msg, h bus.AlertHandler) (int, error) {
	var alerts []vigil.Alert
	for _, m := range msgs {
		var a []vigil.Alert
		if err := json.Unmarshal(m.Data(), &a); err != nil {
			w.badMessage(m, err)
			continue
		}
		alerts = append(alerts, a...)
	}
	if len(alerts) == 0 {
		return 0, nil
	}
	return len(alerts), h(ctx, alerts)
}

// badMessage logs and counts a message that cannot be decoded. It is
// skipped: acknowledged with its batch, since no retry can fix it.
func (w *worker) badMessage(m jetstream.Msg, err error) {
	w.b.m.badMessages.WithLabelValues(w.kind, w.group).Inc()
	seq := uint64(0)
	if md, err := m.Metadata(); err == nil {
		seq = md.Sequence.Stream
	}
	w.log.Error("cannot decode message; skipping it", "err", err, "subject", m.Subject(), "seq", seq, "bytes", len(m.Data()))
}

// backoff returns base doubled for each of n-1 previous attempts, up to max.
func backoff(base, max time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// sleep waits for d or ctx's end; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
