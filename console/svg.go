package console

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
)

// chart is an SVG drawn on the server: no script, no style attribute
// (colours come from classes in the stylesheet), a title and a text
// description for screen readers.
type chart struct {
	SVG  template.HTML
	Desc string // the data in words, also shown when the chart is empty
}

const (
	chartH     = 180
	padL, padB = 44, 26
	padT, padR = 14, 10
)

// Chart widths (viewBox units): half a page, or the whole page.
const (
	narrow = 640
	wide   = 1200
)

func esc(s string) string { return html.EscapeString(s) }

// niceMax returns the top of a y axis of four steps that holds v: each
// step a round number, at least 1 (the charts count things or seconds).
func niceMax(v float64) float64 {
	step := v / 4
	if step <= 1 {
		return 4
	}
	p := math.Pow(10, math.Floor(math.Log10(step)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= step {
			return 4 * m * p
		}
	}
	return 40 * p
}

func fmtNum(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// frame draws the axes and the y grid of a chart up to top.
func frame(b *strings.Builder, chartW int, title string, top float64) {
	fmt.Fprintf(b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg"><title>%s</title>`,
		chartW, chartH, esc(title), esc(title))
	plotH := float64(chartH - padT - padB)
	for i := 0; i <= 4; i++ {
		y := float64(padT) + plotH*float64(i)/4
		fmt.Fprintf(b, `<line class="grid" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`, padL, y, chartW-padR, y)
		fmt.Fprintf(b, `<text class="axis" x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-6, y+4, fmtNum(top*float64(4-i)/4))
	}
}

// labelsX writes every k-th label under the slots.
func labelsX(b *strings.Builder, chartW int, labels []string, slot float64) {
	step := max(1, int(math.Ceil(float64(len(labels))*46/float64(chartW-padL-padR))))
	for i, l := range labels {
		if i%step != 0 {
			continue
		}
		x := float64(padL) + slot*(float64(i)+0.5)
		fmt.Fprintf(b, `<text class="axis" x="%.1f" y="%d" text-anchor="middle">%s</text>`, x, chartH-8, esc(l))
	}
}

// barChart draws one bar per label.
func barChart(chartW int, title string, labels []string, values []float64, class string) chart {
	var top, sum float64
	for _, v := range values {
		top = max(top, v)
		sum += v
	}
	top = niceMax(top)
	var b strings.Builder
	frame(&b, chartW, title, top)
	slot := float64(chartW-padL-padR) / float64(max(1, len(values)))
	plotH := float64(chartH - padT - padB)
	for i, v := range values {
		h := plotH * v / top
		fmt.Fprintf(&b, `<rect class="bar %s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %s</title></rect>`,
			class, float64(padL)+slot*float64(i)+slot*0.15, float64(padT)+plotH-h, slot*0.7, h, esc(labels[i]), fmtNum(v))
	}
	labelsX(&b, chartW, labels, slot)
	b.WriteString(`</svg>`)
	return chart{SVG: template.HTML(b.String()), Desc: fmt.Sprintf("%s: %s in all.", title, fmtNum(sum))}
}

// pairChart draws two bars per label (a and b).
func pairChart(chartW int, title string, labels []string, a, bv []float64, la, lb string) chart {
	var top float64
	for i := range a {
		top = max(top, a[i], bv[i])
	}
	top = niceMax(top)
	var b strings.Builder
	frame(&b, chartW, title, top)
	slot := float64(chartW-padL-padR) / float64(max(1, len(labels)))
	plotH := float64(chartH - padT - padB)
	for i := range labels {
		for j, v := range []float64{a[i], bv[i]} {
			h := plotH * v / top
			name := []string{la, lb}[j]
			fmt.Fprintf(&b, `<rect class="bar s%d" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s %s: %s</title></rect>`,
				j, float64(padL)+slot*float64(i)+slot*(0.12+0.38*float64(j)), float64(padT)+plotH-h, slot*0.36, h, esc(labels[i]), esc(name), fmtNum(v))
		}
	}
	labelsX(&b, chartW, labels, slot)
	fmt.Fprintf(&b, `<rect class="bar s0" x="%d" y="2" width="10" height="8"/><text class="axis" x="%d" y="10">%s</text>`, chartW-170, chartW-156, esc(la))
	fmt.Fprintf(&b, `<rect class="bar s1" x="%d" y="2" width="10" height="8"/><text class="axis" x="%d" y="10">%s</text>`, chartW-90, chartW-76, esc(lb))
	b.WriteString(`</svg>`)
	return chart{SVG: template.HTML(b.String()), Desc: title}
}

// healthChart draws a device's CPU, memory and disk use (percent) over the
// last 24 hours, averaged into 5-minute buckets.
func healthChart(hist []vigil.Health, now time.Time) chart {
	const buckets = 288
	start := now.Add(-24 * time.Hour)
	type acc struct{ cpu, mem, disk, n float64 }
	bs := make([]acc, buckets)
	for _, h := range hist {
		i := int(h.Time.Sub(start) / (5 * time.Minute))
		if i < 0 || i >= buckets {
			continue
		}
		bs[i].cpu += h.CPU
		bs[i].mem += h.Memory
		bs[i].disk += h.Disk
		bs[i].n++
	}
	const chartW = wide
	var b strings.Builder
	title := "CPU, memory and disk use (%), last 24 hours"
	frame(&b, chartW, title, 100)
	plotW, plotH := float64(chartW-padL-padR), float64(chartH-padT-padB)
	series := []struct {
		name string
		get  func(a acc) float64
	}{{"cpu", func(a acc) float64 { return a.cpu / a.n }}, {"memory", func(a acc) float64 { return a.mem / a.n }}, {"disk", func(a acc) float64 { return a.disk / a.n }}}
	for si, s := range series {
		var pts []string
		flush := func() {
			if len(pts) > 1 {
				fmt.Fprintf(&b, `<polyline class="line s%d" points="%s"><title>%s</title></polyline>`, si, strings.Join(pts, " "), s.name)
			} else if len(pts) == 1 {
				xy := strings.Split(pts[0], ",")
				fmt.Fprintf(&b, `<circle class="dot s%d" cx="%s" cy="%s" r="2.5"><title>%s</title></circle>`, si, xy[0], xy[1], s.name)
			}
			pts = pts[:0]
		}
		gap := 0
		for i, a := range bs {
			if a.n == 0 {
				// A line runs across short gaps (samples every 10
				// minutes leave every other bucket empty); half an
				// hour without a sample breaks it.
				if gap++; gap == 6 {
					flush()
				}
				continue
			}
			gap = 0
			v := min(max(s.get(a), 0), 100)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", float64(padL)+plotW*(float64(i)+0.5)/buckets, float64(padT)+plotH*(1-v/100)))
		}
		flush()
		fmt.Fprintf(&b, `<rect class="bar s%d" x="%d" y="2" width="10" height="8"/><text class="axis" x="%d" y="10">%s</text>`, si, chartW-230+si*75, chartW-216+si*75, s.name)
	}
	labels := make([]string, 24)
	for i := range labels {
		labels[i] = start.Add(time.Duration(i) * time.Hour).UTC().Format("15h")
	}
	labelsX(&b, chartW, labels, plotW/24)
	b.WriteString(`</svg>`)
	return chart{SVG: template.HTML(b.String()), Desc: fmt.Sprintf("%d health samples in the last 24 hours.", len(hist))}
}
