package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

// printDetail writes one object in full as "name<TAB>value" lines, in the
// order of its JSON fields: lead lines first, then every field not in
// skip. Nested objects become dotted names (fields.user.name), lists of
// plain values one comma-separated line, zero times and nulls "-".
func printDetail(w io.Writer, lead [][2]string, v any, skip ...string) error {
	for _, l := range lead {
		fmt.Fprintf(w, "%s\t%s\n", l[0], l[1])
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cannot encode: %w", err)
	}
	skipped := map[string]bool{}
	for _, s := range skip {
		skipped[s] = true
	}
	return flattenJSON(w, "", b, skipped)
}

func flattenJSON(w io.Writer, prefix string, raw []byte, skip map[string]bool) error {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) > 0 && raw[0] == '{':
		dec := json.NewDecoder(bytes.NewReader(raw))
		if _, err := dec.Token(); err != nil {
			return fmt.Errorf("cannot decode: %w", err)
		}
		for dec.More() {
			t, err := dec.Token()
			if err != nil {
				return fmt.Errorf("cannot decode: %w", err)
			}
			var val json.RawMessage
			if err := dec.Decode(&val); err != nil {
				return fmt.Errorf("cannot decode: %w", err)
			}
			name := t.(string)
			if prefix != "" {
				name = prefix + "." + name
			}
			if skip[name] {
				continue
			}
			if err := flattenJSON(w, name, val, skip); err != nil {
				return err
			}
		}
		return nil
	case len(raw) > 0 && raw[0] == '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return fmt.Errorf("cannot decode: %w", err)
		}
		plain := make([]string, 0, len(items))
		for _, it := range items {
			if c := bytes.TrimSpace(it); len(c) > 0 && (c[0] == '{' || c[0] == '[') {
				plain = nil
				break
			}
			plain = append(plain, scalarText(it))
		}
		if plain != nil || len(items) == 0 {
			fmt.Fprintf(w, "%s\t%s\n", prefix, dash(strings.Join(plain, ", ")))
			return nil
		}
		for i, it := range items {
			if err := flattenJSON(w, fmt.Sprintf("%s[%d]", prefix, i), it, skip); err != nil {
				return err
			}
		}
		return nil
	default:
		fmt.Fprintf(w, "%s\t%s\n", prefix, scalarText(raw))
		return nil
	}
}

// scalarText is a JSON scalar as a person reads it: strings unquoted, one
// line; null and the zero time "-".
func scalarText(raw []byte) string {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if s == "" || s == "0001-01-01T00:00:00Z" {
			return "-"
		}
		return printable(s)
	}
	if t := string(bytes.TrimSpace(raw)); t != "null" {
		return t
	}
	return "-"
}

// printable returns s, or s quoted with Go escapes when it holds control
// characters: a device's event fields must not move the cursor, recolour
// or retitle the terminal of the analyst who reads them.
func printable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == utf8.RuneError }) < 0 {
		return s
	}
	return strconv.Quote(s)
}

// addCursorFlag adds --cursor, which continues a listing where the
// previous page stopped.
func addCursorFlag(cmd *cobra.Command, cursor *string) {
	cmd.Flags().StringVar(cursor, "cursor", "", "continue a listing where the previous page stopped (printed after it)")
}

// printMore says, after a page of a listing, that more rows exist and how
// to get them: below the table, or on stderr with -o json (stdout stays
// one JSON document).
func (o *ctlOptions) printMore(cmd *cobra.Command, next string) {
	if next == "" {
		return
	}
	w := cmd.OutOrStdout()
	if o.output == "json" {
		w = cmd.ErrOrStderr()
	}
	fmt.Fprintf(w, "… more rows: add --cursor %s (or raise --limit)\n", next)
}

// ruleName shows a rule by its title, then its id.
func ruleName(title, id string) string {
	switch {
	case title == "":
		return id
	case id == "" || id == title:
		return title
	}
	return title + " (" + id + ")"
}
