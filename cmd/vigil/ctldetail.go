package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect/sigma"
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

// printAlertDetail writes one alert in full (printDetail) followed by why
// it fired: its explanation, or for learned behaviour alerts the
// baseline.* fields that explain them, as "why.<what><TAB>value" lines.
// Every value from an event goes through printable.
func printAlertDetail(w io.Writer, a vigil.Alert) error {
	if err := printDetail(w, [][2]string{{"rule", ruleName(a.Title, a.RuleID)}}, a, "title", "rule_id", "explanation", "priority"); err != nil {
		return err
	}
	printPriority(w, a.Priority)
	line := func(name, value string) {
		if value != "" {
			fmt.Fprintf(w, "why.%s\t%s\n", name, value)
		}
	}
	x := a.Explanation
	if x == nil {
		// Learned behaviour alerts explain themselves in their fields.
		var keys []string
		for k := range a.Fields {
			if strings.HasPrefix(k, "baseline.") {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			line(strings.TrimPrefix(k, "baseline."), printable(vigil.ValueString(a.Fields[k])))
		}
		if len(keys) == 0 {
			line("explanation", "- (none recorded: the alert predates explanations or its detector gives none)")
		}
		return nil
	}
	if r := x.Rule; r != nil {
		s := ruleName(r.Title, r.ID)
		if r.Level != "" {
			s += ", level " + r.Level
		}
		line("rule", printable(s))
		line("description", printable(r.Description))
		line("condition", printable(r.Condition))
	}
	for _, m := range x.Matches {
		line("matched", printable(m.Selection)+": "+sigma.FormatMatch(m))
	}
	if len(x.Group) > 0 {
		keys := slices.Sorted(maps.Keys(x.Group))
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, printable(k)+"="+strconv.Quote(x.Group[k]))
		}
		line("group", strings.Join(parts, " "))
	}
	line("window", printable(x.Window))
	if t := x.Threshold; t != nil {
		s := printable(t.Series + " " + t.Op + " " + t.Threshold)
		if t.Observed != "" {
			s += ", observed " + printable(t.Observed)
		}
		if t.Count > 0 {
			s += fmt.Sprintf(" (%d events)", t.Count)
		}
		line("threshold", s)
	}
	if i := x.Indicator; i != nil {
		s := printable(i.Type + " " + i.Value)
		if i.Name != "" {
			s += " (" + printable(i.Name) + ")"
		}
		s += fmt.Sprintf(", feed %s, confidence %d", printable(i.Feed), i.Confidence)
		if i.Field != "" {
			s += ", matched " + printable(i.Field) + "=" + strconv.Quote(i.Matched)
		}
		line("indicator", s)
	}
	for _, e := range x.Evidence {
		s := dash(e.EventID)
		if !e.Time.IsZero() {
			s += " at " + e.Time.UTC().Format(time.RFC3339)
		}
		if e.Kind != "" {
			s += " " + printable(e.Kind)
		}
		keys := slices.Sorted(maps.Keys(e.Fields))
		for _, k := range keys {
			s += " " + printable(k) + "=" + strconv.Quote(e.Fields[k])
		}
		line("evidence", s)
	}
	return nil
}
