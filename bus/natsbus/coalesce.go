package natsbus

import (
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// maxInflight is the number of messages of one partition that may await
// their acknowledgement at once. Pieces submitted meanwhile wait and are
// merged into the next message: under load, many small PublishEvents
// calls become few large messages (group commit), and when idle a piece
// goes out at once.
const maxInflight = 2

// piece is one PublishEvents call's message for one partition.
type piece struct {
	msg  outMsg
	err  error
	done chan struct{} // closed when the piece is stored or failed
}

// partitionQueue publishes the pieces of one partition in submission order,
// merging those that wait.
type partitionQueue struct {
	b     *Bus
	merge bool // false with DedupWindow: a piece's message id must not change
	limit int  // max message size

	mu       sync.Mutex
	waiting  []*piece
	inflight int
}

// submit queues a piece; its done channel is closed once it is stored.
func (q *partitionQueue) submit(p *piece) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.waiting = append(q.waiting, p)
	q.flushLocked()
}

// flushLocked publishes waiting pieces while the in-flight window allows.
// Publishing under the lock keeps the partition's order.
func (q *partitionQueue) flushLocked() {
	for q.inflight < maxInflight && len(q.waiting) > 0 {
		k, size := 1, len(q.waiting[0].msg.data)
		for q.merge && k < len(q.waiting) && size+len(q.waiting[k].msg.data)-headerLen <= q.limit {
			size += len(q.waiting[k].msg.data) - headerLen
			k++
		}
		batch := append([]*piece(nil), q.waiting[:k]...)
		clear(q.waiting[:k])
		q.waiting = q.waiting[k:]

		m := &nats.Msg{Subject: batch[0].msg.subject, Data: batch[0].msg.data}
		var pooled *[]byte
		if k > 1 {
			pooled = bufPool.Get().(*[]byte)
			data := appendHeader((*pooled)[:0])
			count := 0
			for _, p := range batch {
				data = append(data, p.msg.data[headerLen:]...)
				count += p.msg.count
			}
			putCount(data, count)
			*pooled = data
			m.Data = data
		}
		var f jetstream.PubAckFuture
		var err error
		if q.b.cfg.DedupWindow > 0 {
			f, err = q.b.js.PublishMsgAsync(m, jetstream.WithMsgID(batch[0].msg.msgID()))
		} else {
			f, err = q.b.js.PublishMsgAsync(m)
		}
		if err != nil {
			// Too many publishes in flight, or the connection is closed:
			// the pieces still waiting would fail the same way, after
			// the same stall.
			release(pooled)
			finish(batch, err)
			finish(q.waiting, err)
			clear(q.waiting)
			q.waiting = q.waiting[:0]
			return
		}
		q.inflight++
		go q.await(f, batch, pooled)
	}
}

// await waits for a message's acknowledgement, tells its pieces, and
// sends what waited meanwhile.
func (q *partitionQueue) await(f jetstream.PubAckFuture, batch []*piece, pooled *[]byte) {
	var err error
	select {
	case <-f.Ok():
	case err = <-f.Err():
	}
	release(pooled)
	finish(batch, err)
	q.mu.Lock()
	q.inflight--
	q.flushLocked()
	q.mu.Unlock()
}

func finish(batch []*piece, err error) {
	for _, p := range batch {
		p.err = err
		close(p.done)
	}
}

func release(p *[]byte) {
	if p != nil {
		*p = (*p)[:0]
		bufPool.Put(p)
	}
}
