package plain

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-iot/vigil/feeds"
)

// typeNames maps type names found in CSV feeds (MISP, ThreatFox, abuse.ch
// and plain words) to indicator types.
var typeNames = map[string]feeds.Type{
	"ip": feeds.TypeIP, "ipv4": feeds.TypeIP, "ipv6": feeds.TypeIP, "ip-dst": feeds.TypeIP, "ip-src": feeds.TypeIP,
	"ip:port": feeds.TypeIP, "ip-dst|port": feeds.TypeIP, "cidr": feeds.TypeIP, "ipv4-addr": feeds.TypeIP, "ipv6-addr": feeds.TypeIP,
	"domain": feeds.TypeDomain, "hostname": feeds.TypeDomain, "fqdn": feeds.TypeDomain, "domain-name": feeds.TypeDomain,
	"url": feeds.TypeURL, "uri": feeds.TypeURL,
	"md5": feeds.TypeMD5, "md5_hash": feeds.TypeMD5, "sha1": feeds.TypeSHA1, "sha1_hash": feeds.TypeSHA1,
	"sha256": feeds.TypeSHA256, "sha256_hash": feeds.TypeSHA256, "sha512": feeds.TypeSHA512,
}

// TypeByName maps a type name from a feed ("ip-dst", "sha256_hash") to an
// indicator type.
func TypeByName(name string) (feeds.Type, bool) {
	t, ok := typeNames[strings.ToLower(strings.TrimSpace(name))]
	return t, ok
}

// Value turns one raw value into an indicator type, its normalized value
// and conditions: "1.2.3.4:443" (or "[2001:db8::1]:443") becomes the
// address with a port condition. hint, when not empty, is the type to use.
func Value(hint feeds.Type, raw string) (feeds.Type, string, []feeds.Cond, error) {
	raw = strings.TrimSpace(raw)
	var conds []feeds.Cond
	if hint == "" || hint == feeds.TypeIP {
		if ap, err := netip.ParseAddrPort(raw); err == nil {
			raw = ap.Addr().String()
			conds = append(conds, feeds.Cond{Type: feeds.TypePort, Value: strconv.Itoa(int(ap.Port()))})
		}
	}
	t := hint
	if t == "" {
		var ok bool
		if t, ok = feeds.Guess(raw); !ok {
			return "", "", nil, errors.New("not an address, prefix, domain, URL or hash")
		}
	}
	v, err := feeds.Normalize(t, raw)
	if err != nil {
		return "", "", nil, err
	}
	return t, v, conds, nil
}

// maxLine bounds a line of a list; a longer one is rejected.
const maxLine = 64 * 1024

// ParseList reads one indicator a line. Blank lines and lines starting with
// "#" or ";" are ignored, as is anything after whitespace on a line. A line
// longer than 64 KiB is rejected and the rest go through.
func ParseList(r io.Reader, f *feeds.Feed, now time.Time) ([]feeds.Indicator, feeds.Result, error) {
	var res feeds.Result
	var out []feeds.Indicator
	br := bufio.NewReaderSize(r, maxLine)
	line := 0
	for {
		b, err := br.ReadSlice('\n')
		if len(b) == 0 && err != nil {
			if err == io.EOF {
				break
			}
			return out, res, fmt.Errorf("cannot read list at line %d: %w", line+1, err)
		}
		line++
		if err == bufio.ErrBufferFull {
			s := strings.TrimSpace(string(b)) // before the next read overwrites b
			for err == bufio.ErrBufferFull {  // skip the rest of the line
				_, err = br.ReadSlice('\n')
			}
			if err != nil && err != io.EOF {
				return out, res, fmt.Errorf("cannot read list at line %d: %w", line, err)
			}
			if s != "" && s[0] != '#' && s[0] != ';' {
				res.Reject("line %d: longer than %d bytes", line, maxLine)
			}
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "" || s[0] == '#' || s[0] == ';' {
			continue
		}
		if i := strings.IndexAny(s, " \t"); i >= 0 {
			s = s[:i]
		}
		t, v, conds, err := Value("", s)
		if err != nil {
			res.Reject("line %d: %v", line, err)
			continue
		}
		in := feeds.Indicator{ID: fmt.Sprintf("%s:%d", f.Name, line), Type: t, Value: v, And: conds}
		f.Apply(&in, now)
		out = append(out, in)
		res.Imported++
	}
	return out, res, nil
}

// ParseCSV reads a CSV feed with the feed's column mapping.
func ParseCSV(r io.Reader, f *feeds.Feed, now time.Time) ([]feeds.Indicator, feeds.Result, error) {
	m := f.CSV
	if m == nil || m.Value == "" {
		return nil, feeds.Result{}, errors.New("cannot read CSV: no column mapping (value column)")
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	if m.Comment != 0 {
		cr.Comment = m.Comment
	}
	if m.Delimiter != 0 {
		cr.Comma = m.Delimiter
	}
	if !usable(cr.Comma) || !usable(cr.Comment) || cr.Comma == cr.Comment {
		return nil, feeds.Result{}, fmt.Errorf("cannot read CSV: delimiter %q and comment %q: want two different characters, neither a quote nor a line break", cr.Comma, cr.Comment)
	}
	var res feeds.Result
	var out []feeds.Indicator
	cols := map[string]int{}
	col := func(name string) (int, error) {
		if name == "" {
			return -1, nil
		}
		if n, err := strconv.Atoi(name); err == nil {
			return n, nil
		}
		if i, ok := cols[strings.ToLower(name)]; ok {
			return i, nil
		}
		return -1, fmt.Errorf("cannot read CSV: no column %q in the header", name)
	}
	if !m.NoHeader {
		hdr, err := cr.Read()
		if err != nil {
			return nil, res, fmt.Errorf("cannot read CSV header: %w", err)
		}
		for i, h := range hdr {
			cols[strings.ToLower(strings.TrimSpace(h))] = i
		}
	}
	vc, err := col(m.Value)
	if err != nil {
		return nil, res, err
	}
	tc, err := col(m.Type)
	if err != nil {
		return nil, res, err
	}
	cc, err := col(m.Confidence)
	if err != nil {
		return nil, res, err
	}
	nc, err := col(m.Name)
	if err != nil {
		return nil, res, err
	}
	get := func(rec []string, i int) string {
		if i < 0 || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				res.Reject("line %d: %v", pe.Line, pe.Err)
				continue
			}
			return out, res, fmt.Errorf("cannot read CSV: %w", err)
		}
		line, _ := cr.FieldPos(0) // only after a record was read: it panics otherwise
		raw := get(rec, vc)
		if raw == "" {
			res.Reject("line %d: empty value", line)
			continue
		}
		var hint feeds.Type
		if tn := get(rec, tc); tn != "" {
			t, ok := TypeByName(tn)
			if !ok {
				res.Reject("line %d: unknown type", line)
				continue
			}
			hint = t
		}
		t, v, conds, err := Value(hint, raw)
		if err != nil {
			res.Reject("line %d: %v", line, err)
			continue
		}
		in := feeds.Indicator{ID: fmt.Sprintf("%s:%d", f.Name, line), Type: t, Value: v, And: conds, Name: get(rec, nc)}
		if s := get(rec, cc); s != "" {
			c, err := strconv.Atoi(s)
			if err != nil || c < 0 || c > 100 {
				res.Reject("line %d: bad confidence: want 0..100", line)
				continue
			}
			in.Confidence = c
		}
		f.Apply(&in, now)
		out = append(out, in)
		res.Imported++
	}
	return out, res, nil
}

// usable reports whether encoding/csv takes r as a delimiter or comment.
func usable(r rune) bool {
	return r != '"' && r != '\r' && r != '\n' && utf8.ValidRune(r) && r != utf8.RuneError
}
