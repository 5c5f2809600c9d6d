package hunt

import (
	"cmp"
	"math/bits"
	"slices"
	"strconv"
	"strings"
)

// group is one row of a stats or top table being built.
type group struct {
	vals  []string
	count int64
	aggs  []aggState
}

type aggState struct {
	n        int64 // values seen (count(f), avg)
	sum      float64
	min, max float64
	distinct map[string]struct{}
}

// maxByFields bounds the fields of a by clause.
const maxByFields = 4

// maxDense bounds the combinations of by values that a segment's grouping
// indexes directly (group).
const maxDense = 1 << 16

func (x *run) initStats(c Command) {
	x.stats = &c
	x.groups = map[string]*group{}
	if c.Name == "top" {
		x.by = append(slices.Clone(c.By), c.Fields...)
		x.stats.Aggs = nil
	} else {
		x.by = c.By
	}
}

// localGroup is a group within one segment, keyed by dictionary ids.
type localGroup struct {
	count int64
	aggs  []aggState
	ids   map[int]map[uint32]struct{} // dc: per agg, dictionary ids
}

// partial is the groups of one segment, keyed by dictionary ids, before
// they are merged by value (merge).
type partial struct {
	bycols  []*column
	aggcols []*column
	local   map[[maxByFields]uint64]*localGroup
}

// aggregate adds the matching rows of s to the groups.
func (x *run) aggregate(s *segment, m bitset) {
	x.merge(x.group(s, m))
}

// group groups the matching rows of s; it only reads x, so segments can
// be grouped in parallel.
func (x *run) group(s *segment, m bitset) *partial {
	if len(x.by) > maxByFields {
		return nil
	}
	bycols := make([]*column, len(x.by))
	for i, f := range x.by {
		bycols[i] = s.cols[canonical(f)]
	}
	aggs := x.stats.Aggs
	aggcols := make([]*column, len(aggs))
	nums := make([][]float64, len(aggs))
	numok := make([][]bool, len(aggs))
	for i, a := range aggs {
		c := s.cols[canonical(a.Field)]
		aggcols[i] = c
		if c != nil && (a.Func == "sum" || a.Func == "avg" || a.Func == "min" || a.Func == "max") {
			nums[i], numok[i] = make([]float64, len(c.dict)), make([]bool, len(c.dict))
			for id := 1; id < len(c.dict); id++ {
				f, err := strconv.ParseFloat(c.dict[id], 64)
				nums[i][id], numok[i][id] = f, err == nil
			}
		}
	}
	local := map[[maxByFields]uint64]*localGroup{}
	// When the by fields are columns whose dictionaries make few
	// combinations, a row finds its group by index rather than by hashing
	// its key.
	var dense []*localGroup
	strides, n := x.denseStrides(bycols)
	if n > 0 {
		dense = make([]*localGroup, n)
	}
	for w, word := range m {
		for word != 0 {
			bit := word & -word
			i := w*64 + bits.TrailingZeros64(bit)
			word &^= bit
			var g *localGroup
			at := 0
			if dense != nil {
				for j, c := range bycols {
					if c != nil {
						at += int(c.ids[i]) * strides[j]
					}
				}
				g = dense[at]
			}
			if g == nil {
				var key [maxByFields]uint64
				for j, c := range bycols {
					switch {
					case x.by[j] == TimeField:
						t := s.times[i]
						if x.span > 0 {
							t = floorDiv(t, x.span) * x.span
						}
						key[j] = uint64(t)
					case c != nil:
						key[j] = uint64(c.ids[i])
					}
				}
				g = local[key]
				if g == nil {
					g = &localGroup{aggs: make([]aggState, len(aggs))}
					local[key] = g
				}
				if dense != nil {
					dense[at] = g
				}
			}
			g.count++
			for j, a := range aggs {
				c := aggcols[j]
				if c == nil || c.ids[i] == 0 {
					continue
				}
				id := c.ids[i]
				st := &g.aggs[j]
				switch a.Func {
				case "count":
					st.n++
				case "dc":
					if g.ids == nil {
						g.ids = map[int]map[uint32]struct{}{}
					}
					if g.ids[j] == nil {
						g.ids[j] = map[uint32]struct{}{}
					}
					g.ids[j][id] = struct{}{}
				default:
					if !numok[j][id] {
						continue
					}
					f := nums[j][id]
					if st.n == 0 || f < st.min {
						st.min = f
					}
					if st.n == 0 || f > st.max {
						st.max = f
					}
					st.n++
					st.sum += f
				}
			}
		}
	}
	return &partial{bycols: bycols, aggcols: aggcols, local: local}
}

// denseStrides returns, for by columns indexed directly, the stride of
// each column's dictionary id and the number of combinations; 0 when
// they cannot be (a time bucket, or more than maxDense combinations).
func (x *run) denseStrides(bycols []*column) ([maxByFields]int, int) {
	var strides [maxByFields]int
	n := 1
	for j, c := range bycols {
		if x.by[j] == TimeField {
			return strides, 0
		}
		strides[j] = n
		if c != nil {
			n *= len(c.dict)
		}
		if n > maxDense {
			return strides, 0
		}
	}
	return strides, n
}

// merge adds the groups of one segment to the result's, by value.
func (x *run) merge(p *partial) {
	if p == nil {
		x.tooMany = true
		return
	}
	bycols, aggcols, local, aggs := p.bycols, p.aggcols, p.local, x.stats.Aggs
	vals := make([]string, len(x.by))
	for key, lg := range local {
		for j, c := range bycols {
			switch {
			case x.by[j] == TimeField:
				vals[j] = formatTime(int64(key[j]))
			case c != nil && key[j] != 0:
				vals[j] = c.display(uint32(key[j]))
			default:
				vals[j] = ""
			}
		}
		k := strings.Join(vals, "\x1f")
		g := x.groups[k]
		if g == nil {
			if len(x.groups) >= MaxGroups {
				x.tooMany = true
				return
			}
			g = &group{vals: slices.Clone(vals), aggs: make([]aggState, len(aggs))}
			x.groups[k] = g
			x.order = append(x.order, k)
		}
		g.count += lg.count
		for j, a := range aggs {
			st, ls := &g.aggs[j], &lg.aggs[j]
			switch a.Func {
			case "count":
				st.n += ls.n
			case "dc":
				if st.distinct == nil {
					st.distinct = map[string]struct{}{}
				}
				for id := range lg.ids[j] {
					st.distinct[aggcols[j].display(id)] = struct{}{}
				}
			default:
				if ls.n == 0 {
					continue
				}
				if st.n == 0 || ls.min < st.min {
					st.min = ls.min
				}
				if st.n == 0 || ls.max > st.max {
					st.max = ls.max
				}
				st.n += ls.n
				st.sum += ls.sum
			}
		}
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// table2 turns the groups into the table: for stats, the by fields then
// the aggregations; for top, the fields, count and percent, the most
// frequent first.
func (x *run) table2() {
	c := x.stats
	if c.Name == "top" {
		x.res.Columns = append(slices.Clone(x.by), "count", "percent")
		gs := make([]*group, 0, len(x.groups))
		for _, k := range x.order {
			gs = append(gs, x.groups[k])
		}
		nb := len(c.By)
		slices.SortStableFunc(gs, func(a, b *group) int {
			if r := slices.Compare(a.vals[:nb], b.vals[:nb]); r != 0 {
				return r
			}
			return cmp.Compare(b.count, a.count)
		})
		totals := map[string]int64{}
		for _, g := range gs {
			totals[strings.Join(g.vals[:nb], "\x1f")] += g.count
		}
		kept := map[string]int{}
		for _, g := range gs {
			bk := strings.Join(g.vals[:nb], "\x1f")
			if kept[bk] >= c.Limit {
				continue
			}
			kept[bk]++
			row := make([]any, 0, len(x.by)+2)
			for _, v := range g.vals {
				row = append(row, v)
			}
			pct := float64(g.count) * 100 / float64(totals[bk])
			row = append(row, float64(g.count), float64(int64(pct*100+0.5))/100)
			x.res.Rows = append(x.res.Rows, row)
		}
		if nb == 0 {
			// The most frequent first across the table.
			slices.SortStableFunc(x.res.Rows, func(a, b []any) int { return cmp.Compare(b[len(b)-2].(float64), a[len(a)-2].(float64)) })
		}
		return
	}
	x.res.Columns = slices.Clone(x.by)
	for _, a := range c.Aggs {
		x.res.Columns = append(x.res.Columns, a.As)
	}
	if len(x.by) == 0 && len(x.groups) == 0 {
		// stats over nothing is one row of zeros.
		x.groups[""] = &group{aggs: make([]aggState, len(c.Aggs))}
		x.order = append(x.order, "")
	}
	for _, k := range x.order {
		g := x.groups[k]
		row := make([]any, 0, len(x.res.Columns))
		for _, v := range g.vals {
			row = append(row, v)
		}
		for j, a := range c.Aggs {
			st := g.aggs[j]
			var v any
			switch a.Func {
			case "count":
				if a.Field == "" {
					v = float64(g.count)
				} else {
					v = float64(st.n)
				}
			case "dc":
				v = float64(len(st.distinct))
			case "sum":
				v = st.sum
			case "avg":
				if st.n > 0 {
					v = st.sum / float64(st.n)
				}
			case "min":
				if st.n > 0 {
					v = st.min
				}
			case "max":
				if st.n > 0 {
					v = st.max
				}
			}
			row = append(row, v)
		}
		x.res.Rows = append(x.res.Rows, row)
	}
	// By values in order, as SPL's stats gives them.
	nb := len(x.by)
	slices.SortStableFunc(x.res.Rows, func(a, b []any) int {
		for i := range nb {
			if r := compareValues(a[i], b[i]); r != 0 {
				return r
			}
		}
		return 0
	})
}
