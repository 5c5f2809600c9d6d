// Package yamlpos finds where in a file a YAML error is, for rule loaders
// whose errors must name a line.
package yamlpos

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Line returns the line of a YAML error in file content b: the line its
// message names; else, as the errors of YAML's reader name none, the line
// of the first character YAML does not accept; else 1 (the parser names no
// line for an error on the first line).
func Line(err error, b []byte) int {
	var n int
	msg := err.Error()
	if i := strings.Index(msg, "line "); i >= 0 {
		fmt.Sscanf(msg[i+5:], "%d", &n)
	}
	if n > 0 {
		return n
	}
	line := 1
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return line
		case r == '\n':
			line++
		case r == '\t' || r == '\r' || r == 0x85 || r >= 0x20 && r <= 0x7e || r >= 0xa0 && r <= 0xd7ff ||
			r >= 0xe000 && r <= 0xfffd || r >= 0x10000:
		default:
			return line // a control character
		}
		i += size
	}
	return 1
}
