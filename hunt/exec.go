package hunt

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// Result is what a hunt returns: either events (newest stored first, each
// a map of its fields with "_time"), or a table (Columns and Rows) for
// stats, top and table.
type Result struct {
	Columns []string         `json:"columns,omitempty"`
	Rows    [][]any          `json:"rows,omitempty"`
	Events  []map[string]any `json:"events,omitempty"`
	// Next is the cursor of the next page of events ("" when none).
	Next string `json:"next,omitempty"`
	// Truncated says that more matched than the result shows: events on
	// further pages (Next), or table rows beyond the limit.
	Truncated bool `json:"truncated"`
	// Scanned counts the events the search examined, Matched those it
	// selected.
	Scanned int64 `json:"scanned"`
	Matched int64 `json:"matched"`
}

// Options of one run.
type Options struct {
	// Limit bounds the events of a page or the rows of a table (0:
	// DefaultLimit; at most MaxLimit).
	Limit int
	// Cursor is a Result.Next of the same query.
	Cursor string
	// Cache, when set, keeps decoded columns of sealed segments for the
	// next runs (one Cache per store).
	Cache *Cache
}

// MaxGroups bounds the groups of stats and top.
const MaxGroups = 200000

// tailBatch is how many unsealed events are read and evaluated at a time.
const tailBatch = 16384

// Run runs q over the events src keeps: the sealed segments and the rows
// after them.
func Run(ctx context.Context, src store.Analytics, q *Query, opts Options) (*Result, error) {
	limit := opts.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	before := int64(math.MaxInt64)
	if opts.Cursor != "" {
		c, err := decodeCursor(opts.Cursor)
		if err != nil {
			return nil, err
		}
		before = c
	}
	x := &run{q: q, res: &Result{}}
	x.filter = q.Search
	for _, c := range q.Commands[:x.preStats()] {
		switch c.Name {
		case "search", "regex":
			x.filter = andOf(x.filter, c.Filter)
		case "bin":
			x.span = c.Span
		case "head":
			x.rawHead = c.Limit
		case "table":
			x.table = c.Fields
		}
	}
	if q.Stats >= 0 {
		x.initStats(q.Commands[q.Stats])
	} else {
		x.limit = limit
		if x.rawHead > 0 && x.rawHead <= limit {
			x.limit, x.headed = x.rawHead, true
		}
	}
	since, until := timeBounds(x.filter)
	x.fields = x.neededFields()

	sealed, err := src.SealedSeq(ctx)
	if err != nil {
		return nil, err
	}
	// The unsealed tail first: it is the newest.
	tail, err := readTail(ctx, src, sealed, opts.Cache)
	if err != nil {
		return nil, err
	}
	for i := len(tail) - 1; i >= 0; i-- {
		if x.eval(tail[i], before) {
			return x.finish(limit)
		}
	}
	infos, err := listSegments(ctx, src, since, until, opts.Cache)
	if err != nil {
		return nil, err
	}
	if x.stats != nil {
		if err := x.parallel(ctx, src, infos, opts.Cache); err != nil {
			return nil, err
		}
		return x.finish(limit)
	}
	// The columns of the search first: a segment where nothing matches
	// is not read further. With a cache, the search runs on a few
	// segments at a time in parallel (one core each), their results
	// taken in order.
	type searched struct {
		seg *segment
		m   bitset
		err error
	}
	step := 1
	if opts.Cache != nil {
		step = 2 * max(1, runtime.GOMAXPROCS(0))
	}
segments:
	for from := 0; from < len(infos); from += step {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("cannot finish hunt: %w", err)
		}
		part := infos[from:min(from+step, len(infos))]
		found := make([]searched, len(part))
		search := func(i int) {
			seg, err := readSegment(ctx, src, part[i], x.filterFields, opts.Cache)
			if err != nil {
				found[i].err = err
				return
			}
			found[i] = searched{seg: seg, m: match(x.filter, seg)}
		}
		var wg sync.WaitGroup
		for i := range part {
			if part[i].First >= before {
				continue
			}
			if len(part) == 1 {
				search(i)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				search(i)
			}()
		}
		wg.Wait()
		for i, info := range part {
			if info.First >= before {
				continue
			}
			if found[i].err != nil {
				return nil, found[i].err
			}
			seg, m := found[i].seg, found[i].m
			if !anyMatch(m, seg.seqs, before) {
				x.res.Scanned += int64(len(seg.seqs))
				continue
			}
			if x.fields == nil && opts.Cache != nil {
				// Whole events: the rows shown are read from the row
				// store, not every column of the segment.
				done, err := x.evalBodies(ctx, src, seg, m, before)
				if err == nil {
					if done {
						break segments
					}
					continue
				}
				if !errors.Is(err, errNoBody) {
					return nil, err
				}
			}
			seg, err := readSegment(ctx, src, info, x.fields, opts.Cache)
			if err != nil {
				return nil, err
			}
			if x.eval(seg, before) {
				break segments
			}
		}
	}
	return x.finish(limit)
}

// anyMatch reports whether m holds a row whose seq is below before.
func anyMatch(m bitset, seqs []int64, before int64) bool {
	for w, word := range m {
		for word != 0 {
			bit := word & -word
			if seqs[w*64+bits.TrailingZeros64(bit)] < before {
				return true
			}
			word &^= bit
		}
	}
	return false
}

func andOf(a, b Expr) Expr {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	return &And{a, b}
}

// run is the state of one execution.
type run struct {
	q       *Query
	res     *Result
	filter  Expr
	span    int64
	rawHead int
	headed  bool
	table   []string
	limit   int      // events of a page
	lastSeq int64    // of the last event of the page
	fields  []string // columns to read (nil: all)
	// filterFields are the columns the search reads.
	filterFields []string

	// stats
	stats   *Command
	by      []string
	groups  map[string]*group
	order   []string // group keys in first-seen order
	tooMany bool
}

func (x *run) preStats() int {
	if x.q.Stats >= 0 {
		return x.q.Stats
	}
	return len(x.q.Commands)
}

// timeBounds returns the time range the top-level conjunction of e
// requires (zero: unbounded), to skip segments.
func timeBounds(e Expr) (since, until time.Time) {
	var lo, hi int64 = math.MinInt64, math.MaxInt64
	var walk func(Expr)
	walk = func(e Expr) {
		switch v := e.(type) {
		case *And:
			walk(v.L)
			walk(v.R)
		case *Cmp:
			if v.Field != TimeField {
				return
			}
			switch v.Op {
			case ">=":
				lo = max(lo, v.when)
			case ">":
				lo = max(lo, v.when+1)
			case "<":
				hi = min(hi, v.when)
			case "<=":
				hi = min(hi, v.when+1)
			}
		}
	}
	walk(e)
	if lo != math.MinInt64 {
		since = time.Unix(0, lo)
	}
	if hi != math.MaxInt64 {
		until = time.Unix(0, hi)
	}
	return since, until
}

// neededFields lists the columns the query reads; nil for all (events).
func (x *run) neededFields() []string {
	set := map[string]bool{}
	var walk func(Expr)
	walk = func(e Expr) {
		switch v := e.(type) {
		case *And:
			walk(v.L)
			walk(v.R)
		case *Or:
			walk(v.L)
			walk(v.R)
		case *Not:
			walk(v.X)
		case *Cmp:
			if v.Field != TimeField {
				set[canonical(v.Field)] = true
			}
		}
	}
	walk(x.filter)
	x.filterFields = sortedKeys(set)
	if x.stats == nil {
		if x.table == nil {
			return nil
		}
		for _, f := range x.table {
			set[canonical(f)] = true
		}
	} else {
		for _, f := range x.by {
			set[canonical(f)] = true
		}
		for _, a := range x.stats.Aggs {
			if a.Field != "" {
				set[canonical(a.Field)] = true
			}
		}
	}
	delete(set, TimeField)
	out := make([]string, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// bitset of rows.
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }
func (b bitset) set(i int)   { b[i/64] |= 1 << (i % 64) }
func (b bitset) has(i int) bool {
	return b[i/64]&(1<<(i%64)) != 0
}

// match evaluates e on every row of s.
func match(e Expr, s *segment) bitset {
	n := len(s.seqs)
	out := newBitset(n)
	switch v := e.(type) {
	case nil, *All:
		for i := range out {
			out[i] = ^uint64(0)
		}
	case *And:
		l, r := match(v.L, s), match(v.R, s)
		for i := range out {
			out[i] = l[i] & r[i]
		}
	case *Or:
		l, r := match(v.L, s), match(v.R, s)
		for i := range out {
			out[i] = l[i] | r[i]
		}
	case *Not:
		x := match(v.X, s)
		for i := range out {
			out[i] = ^x[i]
		}
	case *Cmp:
		if v.Field == TimeField {
			for i, t := range s.times {
				if v.timeHolds(t) {
					out.set(i)
				}
			}
			break
		}
		col := s.cols[canonical(v.Field)]
		if col == nil {
			break
		}
		ok := make([]bool, len(col.dict))
		any := false
		for id := 1; id < len(col.dict); id++ {
			ok[id] = v.holds(col.kinds[id], col.dict[id])
			any = any || ok[id]
		}
		if !any {
			break
		}
		for i, id := range col.ids {
			if ok[id] {
				out.set(i)
			}
		}
	}
	if r := n % 64; r != 0 {
		out[len(out)-1] &= 1<<r - 1
	}
	return out
}

// eval runs the query on the rows of s with seq < before; true when the
// result is full (a page of events).
func (x *run) eval(s *segment, before int64) bool {
	if len(s.seqs) == 0 {
		return false
	}
	m := match(x.filter, s)
	x.res.Scanned += int64(len(s.seqs))
	if before != math.MaxInt64 {
		for i, q := range s.seqs {
			if q >= before {
				m[i/64] &^= 1 << (i % 64)
			}
		}
	}
	for _, w := range m {
		x.res.Matched += int64(bits.OnesCount64(w))
	}
	if x.stats != nil {
		x.aggregate(s, m)
		return false
	}
	return x.emit(s, m)
}

// errNoBody says that the row store no longer has a sealed event.
var errNoBody = errors.New("sealed event not in the row store")

// evalBodies is eval for a search showing whole events when s holds the
// search's columns only and m its matches: the rows that the page shows
// are read from the row store (a few point reads rather than every
// column of the segment) and made into columns as sealing made them.
// errNoBody, with nothing counted, when one of them is gone.
func (x *run) evalBodies(ctx context.Context, src store.Analytics, s *segment, m bitset, before int64) (bool, error) {
	if before != math.MaxInt64 {
		for i, q := range s.seqs {
			if q >= before {
				m[i/64] &^= 1 << (i % 64)
			}
		}
	}
	// The rows the page still takes, and one to tell whether more follow.
	need := x.limit - len(x.res.Events) - len(x.res.Rows) + 1
	var rows []int
	for i := len(s.seqs) - 1; i >= 0 && len(rows) < need; i-- {
		if m.has(i) {
			rows = append(rows, i)
		}
	}
	b := newBuilder()
	var p fastjson.Parser
	for j := len(rows) - 1; j >= 0; j-- {
		seq := s.seqs[rows[j]]
		found := false
		var berr error
		if _, err := src.EventBodiesAfter(ctx, seq-1, 1, func(got int64, body []byte) error {
			if got == seq {
				found, berr = true, b.addJSON(&p, seq, body)
			}
			return nil
		}); err != nil {
			return false, err
		}
		if berr != nil {
			return false, berr
		}
		if !found {
			return false, errNoBody
		}
	}
	x.res.Scanned += int64(len(s.seqs))
	for _, w := range m {
		x.res.Matched += int64(bits.OnesCount64(w))
	}
	shown := b.finish()
	all := newBitset(len(shown.seqs))
	for i := range shown.seqs {
		all.set(i)
	}
	return x.emit(shown, all), nil
}

// emit adds the rows of s that m selects to the page, newest stored
// first, and reports whether the page is full.
func (x *run) emit(s *segment, m bitset) bool {
	for i := len(s.seqs) - 1; i >= 0; i-- {
		if !m.has(i) {
			continue
		}
		if len(x.res.Events)+len(x.res.Rows) == x.limit {
			if !x.headed {
				x.res.Truncated = true
				x.res.Next = encodeCursor(x.lastSeq)
			}
			return true
		}
		x.lastSeq = s.seqs[i]
		if x.table != nil {
			row := make([]any, len(x.table))
			for j, f := range x.table {
				if f == TimeField {
					row[j] = formatTime(s.times[i])
				} else if c := s.cols[canonical(f)]; c != nil {
					row[j] = c.value(i)
				}
			}
			x.res.Rows = append(x.res.Rows, row)
			continue
		}
		ev := map[string]any{TimeField: formatTime(s.times[i])}
		for _, name := range s.names {
			if v := s.cols[name].value(i); v != nil {
				ev[name] = v
			}
		}
		x.res.Events = append(x.res.Events, ev)
	}
	return false
}

func formatTime(t int64) string { return time.Unix(0, t).UTC().Format(time.RFC3339Nano) }

func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("s:" + strconv.FormatInt(seq, 10)))
}

func decodeCursor(c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil && strings.HasPrefix(string(b), "s:") {
		if n, err := strconv.ParseInt(string(b[2:]), 10, 64); err == nil {
			return n, nil
		}
	}
	return 0, vigil.Errorf(vigil.EINVALID, "malformed hunt cursor %q", c)
}

// finish applies the commands after stats and bounds the result.
func (x *run) finish(limit int) (*Result, error) {
	if x.stats == nil {
		if x.table != nil {
			x.res.Columns = x.table
		}
		return x.res, nil
	}
	if x.tooMany {
		return nil, vigil.Errorf(vigil.EINVALID, "more than %d groups: narrow the search or group by fewer fields", MaxGroups)
	}
	x.table2()
	for _, c := range x.q.Commands[x.q.Stats+1:] {
		switch c.Name {
		case "sort":
			if err := x.sortRows(c); err != nil {
				return nil, err
			}
			if c.Limit > 0 && len(x.res.Rows) > c.Limit {
				x.res.Rows = x.res.Rows[:c.Limit]
			}
		case "head":
			if len(x.res.Rows) > c.Limit {
				x.res.Rows = x.res.Rows[:c.Limit]
			}
		case "table":
			if err := x.project(c); err != nil {
				return nil, err
			}
		}
	}
	if len(x.res.Rows) > limit {
		x.res.Rows = x.res.Rows[:limit]
		x.res.Truncated = true
	}
	return x.res, nil
}

func (x *run) colIndex(name string, pos int) (int, error) {
	for i, c := range x.res.Columns {
		if c == name || canonical(c) == canonical(name) {
			return i, nil
		}
	}
	return 0, errAt(pos, "no column %q in the table (columns: %s)", name, strings.Join(x.res.Columns, ", "))
}

func (x *run) sortRows(c Command) error {
	idx := make([]int, len(c.Sort))
	for i, k := range c.Sort {
		j, err := x.colIndex(k.Field, c.Pos)
		if err != nil {
			return err
		}
		idx[i] = j
	}
	slices.SortStableFunc(x.res.Rows, func(a, b []any) int {
		for i, k := range c.Sort {
			r := compareValues(a[idx[i]], b[idx[i]])
			if k.Desc {
				r = -r
			}
			if r != 0 {
				return r
			}
		}
		return 0
	})
	return nil
}

// compareValues orders numbers numerically, before text.
func compareValues(a, b any) int {
	fa, aok := a.(float64)
	fb, bok := b.(float64)
	switch {
	case aok && bok:
		return cmp.Compare(fa, fb)
	case aok:
		return -1
	case bok:
		return 1
	}
	return strings.Compare(vigil.ValueString(a), vigil.ValueString(b))
}

func (x *run) project(c Command) error {
	idx := make([]int, len(c.Fields))
	for i, f := range c.Fields {
		j, err := x.colIndex(f, c.Pos)
		if err != nil {
			return err
		}
		idx[i] = j
	}
	for r, row := range x.res.Rows {
		nr := make([]any, len(idx))
		for i, j := range idx {
			nr[i] = row[j]
		}
		x.res.Rows[r] = nr
	}
	x.res.Columns = c.Fields
	return nil
}

// parallel groups the segments of a stats query on every core: reading,
// decoding, matching and grouping per segment run in parallel, merging
// one segment at a time.
func (x *run) parallel(ctx context.Context, src store.Analytics, infos []store.SegmentInfo, cache *Cache) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan store.SegmentInfo)
	type out struct {
		p       *partial
		scanned int64
		matched int64
		err     error
	}
	outs := make(chan out)
	workers := max(1, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for info := range jobs {
				seg, err := readSegment(ctx, src, info, x.fields, cache)
				if err != nil {
					outs <- out{err: err}
					continue
				}
				m := match(x.filter, seg)
				var n int64
				for _, w := range m {
					n += int64(bits.OnesCount64(w))
				}
				outs <- out{p: x.group(seg, m), scanned: int64(len(seg.seqs)), matched: n}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for _, info := range infos {
			select {
			case jobs <- info:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(outs) }()
	var first error
	for o := range outs {
		if o.err != nil {
			if first == nil {
				first = o.err
				cancel()
			}
			continue
		}
		x.res.Scanned += o.scanned
		x.res.Matched += o.matched
		x.merge(o.p)
	}
	if first == nil && ctx.Err() != nil {
		first = fmt.Errorf("cannot finish hunt: %w", ctx.Err())
	}
	return first
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		if k != TimeField {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
