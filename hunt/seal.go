package hunt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-iot/vigil/store"
)

// SegmentRows is how many events a sealed segment holds.
const SegmentRows = 16384

// Seal seals the stored events after the last segment, up to and
// including sequence number upTo, into segments of SegmentRows events; a
// last run shorter than that stays unsealed (hunts read it as rows). It
// returns how many segments it stored.
//
// upTo must be a sequence number below which no event can still be
// committed: on PostgreSQL, identity values are taken before commit, so
// the sealer passes the greatest number seen one round earlier (Sealer).
func Seal(ctx context.Context, src store.Analytics, upTo int64) (int, error) {
	return seal(ctx, src, upTo, SegmentRows)
}

// seal is Seal with segments of size rows (tests make small ones).
func seal(ctx context.Context, src store.Analytics, upTo int64, size int) (int, error) {
	after, err := src.SealedSeq(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	var p fastjson.Parser
	for {
		b := newBuilder()
		last := after
		var berr error
		rows, err := src.EventBodiesAfter(ctx, after, size, func(seq int64, body []byte) error {
			last = seq
			if berr == nil {
				berr = b.addJSON(&p, seq, body)
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		if rows < size || last > upTo {
			return n, nil
		}
		if berr != nil {
			return n, fmt.Errorf("cannot seal events after %d: %w", after, berr)
		}
		if err := src.PutSegment(ctx, b.finish().encode()); err != nil {
			return n, fmt.Errorf("cannot seal events after %d: %w", after, err)
		}
		after = last
		n++
	}
}

// Sealer seals segments in the background (Run).
type Sealer struct {
	Src   store.Analytics
	Every time.Duration // between rounds (default 10s)
	Log   *slog.Logger
}

// Run seals every Every until ctx ends, each round up to the greatest
// sequence number the previous round saw.
func (s *Sealer) Run(ctx context.Context) {
	every := s.Every
	if every <= 0 {
		every = 10 * time.Second
	}
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "hunt.sealer")
	t := time.NewTicker(every)
	defer t.Stop()
	var seen int64
	if n, err := Upgrade(ctx, s.Src); err != nil && ctx.Err() == nil {
		log.Warn("cannot seal old segments again", "err", err)
	} else if n > 0 {
		log.Info("sealed old segments again", "segments", n)
	}
	for {
		if seen > 0 {
			if n, err := Seal(ctx, s.Src, seen); err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Warn("cannot seal events", "err", err)
			} else if n > 0 {
				log.Debug("sealed segments", "segments", n)
			}
		}
		if m, err := s.Src.MaxEventSeq(ctx); err == nil {
			seen = m
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Upgrade seals again, from the row store, the segments sealed before
// their rows were marked exact or not (version 1), so that retro-hunts
// read them from their columns; it returns how many it sealed. A segment
// whose events are no longer all stored (retention) is left as it is.
func Upgrade(ctx context.Context, src store.Analytics) (int, error) {
	infos, err := src.Segments(ctx, time.Time{}, time.Time{})
	if err != nil {
		return 0, err
	}
	n := 0
	var p fastjson.Parser
	for _, si := range infos {
		if len(si.Meta) == 0 || si.Meta[0] != 1 {
			continue
		}
		b := newBuilder()
		var berr error
		rows, err := src.EventBodiesAfter(ctx, si.First-1, si.Rows, func(seq int64, body []byte) error {
			if seq > si.Last {
				return errStopRows
			}
			if berr == nil {
				berr = b.addJSON(&p, seq, body)
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStopRows) {
			return n, err
		}
		if berr != nil {
			return n, fmt.Errorf("cannot seal events %d-%d again: %w", si.First, si.Last, berr)
		}
		if rows != si.Rows || b.seg.seqs[0] != si.First || b.seg.seqs[rows-1] != si.Last {
			continue
		}
		if err := src.PutSegment(ctx, b.finish().encode()); err != nil {
			return n, fmt.Errorf("cannot seal events %d-%d again: %w", si.First, si.Last, err)
		}
		n++
	}
	return n, nil
}
