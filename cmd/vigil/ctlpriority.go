package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/vigil-iot/vigil"
)

// priorityCell is the PRIORITY column of a list: the score, "-" without one.
func priorityCell(p *vigil.Priority) string {
	if p == nil {
		return "-"
	}
	return strconv.Itoa(p.Score)
}

// printPriority writes a priority and its factors, one line each:
// "priority 76", "priority.severity +45  high", ...,
// "priority.confidence ×0.80  ...".
func printPriority(w io.Writer, p *vigil.Priority) {
	if p == nil {
		fmt.Fprintf(w, "priority\t-\n")
		return
	}
	fmt.Fprintf(w, "priority\t%d\n", p.Score)
	for _, f := range p.Factors {
		pts := fmt.Sprintf("%+g", f.Points)
		if f.Name == "confidence" {
			pts = fmt.Sprintf("×%.2f", f.Points)
		}
		fmt.Fprintf(w, "priority.%s\t%s  %s\n", f.Name, pts, printable(f.Value))
	}
}
