package hunt

import (
	"fmt"
	"strings"
)

// SyntaxError is a query that cannot be parsed or run: what is wrong and
// where (Pos is the byte offset in the query, counted from 0).
type SyntaxError struct {
	Pos int
	Msg string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("at position %d: %s", e.Pos+1, e.Msg)
}

// Caret returns the query with a line under it pointing at the error, for
// a terminal.
func (e *SyntaxError) Caret(query string) string {
	pos := min(max(e.Pos, 0), len(query))
	return query + "\n" + strings.Repeat(" ", pos) + "^ " + e.Msg
}

func errAt(pos int, format string, args ...any) *SyntaxError {
	return &SyntaxError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

type tokKind uint8

const (
	tEOF tokKind = iota
	tWord
	tString
	tOp // = != < <= > >=
	tLParen
	tRParen
	tPipe
	tComma
)

type token struct {
	kind tokKind
	text string // the word, the unquoted string or the operator
	pos  int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "the end of the query"
	case tString:
		return fmt.Sprintf("%q", t.text)
	}
	return fmt.Sprintf("%q", t.text)
}

// maxQuery bounds the length of a query.
const maxQuery = 64 << 10

// lex splits a query into tokens.
func lex(q string) ([]token, error) {
	if len(q) > maxQuery {
		return nil, errAt(maxQuery, "query longer than %d bytes", maxQuery)
	}
	var out []token
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			out = append(out, token{tLParen, "(", i})
			i++
		case c == ')':
			out = append(out, token{tRParen, ")", i})
			i++
		case c == '|':
			out = append(out, token{tPipe, "|", i})
			i++
		case c == ',':
			out = append(out, token{tComma, ",", i})
			i++
		case c == '=':
			out = append(out, token{tOp, "=", i})
			i++
		case c == '!' || c == '<' || c == '>':
			if i+1 < len(q) && q[i+1] == '=' {
				out = append(out, token{tOp, q[i : i+2], i})
				i += 2
			} else if c == '!' {
				return nil, errAt(i, `"!" must be followed by "=" (use NOT to negate)`)
			} else {
				out = append(out, token{tOp, q[i : i+1], i})
				i++
			}
		case c == '"' || c == '\'':
			start := i
			var b strings.Builder
			i++
			closed := false
			for i < len(q) {
				if q[i] == '\\' && i+1 < len(q) && (q[i+1] == c || q[i+1] == '\\') {
					b.WriteByte(q[i+1])
					i += 2
					continue
				}
				if q[i] == c {
					closed = true
					i++
					break
				}
				b.WriteByte(q[i])
				i++
			}
			if !closed {
				return nil, errAt(start, "unterminated quoted string")
			}
			out = append(out, token{tString, b.String(), start})
		default:
			start := i
			for i < len(q) && !strings.ContainsRune(" \t\n\r()|,=!<>\"'", rune(q[i])) {
				i++
			}
			out = append(out, token{tWord, q[start:i], start})
		}
	}
	out = append(out, token{tEOF, "", len(q)})
	return out, nil
}
