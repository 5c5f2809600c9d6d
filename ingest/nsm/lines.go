package nsm

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// ErrLongLine is Lines.Next's answer for a line longer than its bound:
// the line was skipped whole, and reading may go on with the next.
var ErrLongLine = errors.New("line too long")

// Lines reads a monitor's log line by line, each at most max bytes,
// reusing one buffer: what the monitors write (Zeek TSV and JSON,
// Suricata EVE) is one record a line.
type Lines struct {
	br   *bufio.Reader
	long []byte
	max  int
	// Line is the number of the last line returned or skipped (1-based).
	Line int
}

// NewLines reads r with lines of at most max bytes.
func NewLines(r io.Reader, max int) *Lines {
	return &Lines{br: bufio.NewReaderSize(r, 64<<10), max: max}
}

// Next returns the next line without its line end (\n or \r\n), valid
// until the next call. At the end it returns io.EOF; for a line longer
// than max, ErrLongLine (the line is skipped); any other error is the
// reader's.
func (l *Lines) Next() ([]byte, error) {
	b, err := l.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		l.long = append(l.long[:0], b...)
		for err == bufio.ErrBufferFull {
			b, err = l.br.ReadSlice('\n')
			l.long = append(l.long, b...)
			if len(l.long) > l.max {
				l.Line++
				for err == bufio.ErrBufferFull { // skip the rest of the line
					_, err = l.br.ReadSlice('\n')
				}
				return nil, ErrLongLine
			}
		}
		b = l.long
	}
	if err != nil && err != io.EOF {
		return nil, err
	}
	if len(b) == 0 && err != nil {
		return nil, err
	}
	l.Line++
	b = bytes.TrimSuffix(b, []byte{'\n'})
	return bytes.TrimSuffix(b, []byte{'\r'}), nil
}
