package misp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/feeds"
)

type tag struct {
	Name string `json:"name"`
}

type attribute struct {
	UUID     string `json:"uuid"`
	Type     string `json:"type"`
	Category string `json:"category"`
	Value    string `json:"value"`
	ToIDS    bool   `json:"to_ids"`
	Deleted  bool   `json:"deleted"`
	Comment  string `json:"comment"`
	Tag      []tag  `json:"Tag"`
}

type object struct {
	Name      string            `json:"name"`
	Deleted   bool              `json:"deleted"`
	Attribute []json.RawMessage `json:"Attribute"`
}

// Event is the part of a MISP event Vigil reads. Its attributes and
// objects are decoded one by one, so that one of the wrong shape is
// rejected alone.
type Event struct {
	UUID      string            `json:"uuid"`
	Info      string            `json:"info"`
	Tag       []tag             `json:"Tag"`
	Attribute []json.RawMessage `json:"Attribute"`
	Object    []json.RawMessage `json:"Object"`
}

// Parse reads one MISP event.
func Parse(r io.Reader, f *feeds.Feed, now time.Time) ([]feeds.Indicator, feeds.Result, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, feeds.Result{}, fmt.Errorf("cannot read MISP event: %w", err)
	}
	var wrap struct {
		Event *Event `json:"Event"`
	}
	if err := json.Unmarshal(raw, &wrap); err != nil {
		return nil, feeds.Result{}, fmt.Errorf("cannot decode MISP event: %w", err)
	}
	ev := wrap.Event
	if ev == nil {
		ev = new(Event)
		if err := json.Unmarshal(raw, ev); err != nil {
			return nil, feeds.Result{}, fmt.Errorf("cannot decode MISP event: %w", err)
		}
	}
	if ev.UUID == "" && len(ev.Attribute) == 0 && len(ev.Object) == 0 {
		return nil, feeds.Result{}, fmt.Errorf("cannot read MISP event: no uuid, attributes or objects")
	}
	ins, res := Convert(ev, f, now)
	return ins, res, nil
}

// certainty reads an osint:certainty="NN" tag.
func certainty(tags []tag) int {
	for _, t := range tags {
		if v, ok := strings.CutPrefix(t.Name, "osint:certainty="); ok {
			if n, err := strconv.Atoi(strings.Trim(v, `"`)); err == nil && n >= 0 && n <= 100 {
				return n
			}
		}
	}
	return 0
}

// typeOf maps a MISP attribute type to an indicator type; composite types
// ("filename|sha256", "ip-dst|port", "domain|ip") name which part to use.
func typeOf(mt string) (feeds.Type, bool) {
	switch mt {
	case "ip-dst", "ip-src", "ip-dst|port", "ip-src|port":
		return feeds.TypeIP, true
	case "domain", "hostname", "domain|ip", "hostname|port":
		return feeds.TypeDomain, true
	case "url", "uri":
		return feeds.TypeURL, true
	case "md5", "filename|md5":
		return feeds.TypeMD5, true
	case "sha1", "filename|sha1":
		return feeds.TypeSHA1, true
	case "sha256", "filename|sha256":
		return feeds.TypeSHA256, true
	case "sha512", "filename|sha512":
		return feeds.TypeSHA512, true
	}
	return "", false
}

// Convert turns an event's to_ids attributes (its own and its objects')
// into indicators.
func Convert(ev *Event, f *feeds.Feed, now time.Time) ([]feeds.Indicator, feeds.Result) {
	var res feeds.Result
	var out []feeds.Indicator
	evConf := certainty(ev.Tag)
	var evLabels []string
	for _, t := range ev.Tag {
		if strings.HasPrefix(t.Name, "tlp:") || strings.HasPrefix(t.Name, "misp-galaxy:") {
			evLabels = append(evLabels, t.Name)
		}
	}
	// obj is the index of the attribute's object, -1 for the event's own.
	evName := "event" + feeds.Named(ev.UUID) // for errors: no content but a uuid
	do := func(obj, i int, raw json.RawMessage) {
		where := func() string { // for errors only
			if obj >= 0 {
				return fmt.Sprintf("object %d attribute %d", obj, i)
			}
			return fmt.Sprintf("attribute %d", i)
		}
		var a attribute
		if err := json.Unmarshal(raw, &a); err != nil {
			res.Reject("%s %s: cannot decode: %v", evName, where(), err)
			return
		}
		if a.Deleted || !a.ToIDS {
			res.Skipped++
			return
		}
		t, ok := typeOf(a.Type)
		if !ok {
			res.Skipped++
			return
		}
		if a.UUID == "" {
			res.Reject("%s %s (%s): no uuid", evName, where(), a.Type)
			return
		}
		v := a.Value
		var conds []feeds.Cond
		if l, r, ok := strings.Cut(v, "|"); ok {
			switch {
			case strings.HasPrefix(a.Type, "filename|"):
				v = r
			case strings.HasSuffix(a.Type, "|port"):
				v = l
				port, err := feeds.Normalize(feeds.TypePort, r)
				if err != nil {
					res.Reject("%s %s%s (%s): %v", evName, where(), feeds.Named(a.UUID), a.Type, err)
					return
				}
				conds = append(conds, feeds.Cond{Type: feeds.TypePort, Value: port})
			default: // domain|ip: the domain
				v = l
			}
		}
		n, err := feeds.Normalize(t, v)
		if err != nil {
			res.Reject("%s %s%s (%s): %v", evName, where(), feeds.Named(a.UUID), a.Type, err)
			return
		}
		in := feeds.Indicator{ID: a.UUID, Type: t, Value: n, And: conds, Name: ev.Info, Description: a.Comment,
			Labels: evLabels, Confidence: certainty(a.Tag)}
		if in.Confidence == 0 {
			in.Confidence = evConf
		}
		f.Apply(&in, now)
		out = append(out, in)
		res.Imported++
	}
	for i, a := range ev.Attribute {
		do(-1, i, a)
	}
	for i, raw := range ev.Object {
		var o object
		if err := json.Unmarshal(raw, &o); err != nil {
			res.Reject("%s object %d: cannot decode: %v", evName, i, err)
			continue
		}
		if o.Deleted {
			continue
		}
		for j, a := range o.Attribute {
			do(i, j, a)
		}
	}
	return out, res
}

// Open opens one file of a MISP feed by name ("manifest.json",
// "<uuid>.json").
type Open func(ctx context.Context, name string) (io.ReadCloser, error)

// ParseFeed reads a MISP feed: its manifest, then every event it lists. An
// event that cannot be read is rejected and the rest go through.
func ParseFeed(ctx context.Context, open Open, f *feeds.Feed, now time.Time) ([]feeds.Indicator, feeds.Result, error) {
	rc, err := open(ctx, "manifest.json")
	if err != nil {
		return nil, feeds.Result{}, fmt.Errorf("cannot open MISP feed manifest: %w", err)
	}
	var manifest map[string]json.RawMessage
	err = json.NewDecoder(rc).Decode(&manifest)
	rc.Close()
	if err != nil {
		return nil, feeds.Result{}, fmt.Errorf("cannot decode MISP feed manifest: %w", err)
	}
	ids := make([]string, 0, len(manifest))
	for id := range manifest {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var res feeds.Result
	var out []feeds.Indicator
	for k, id := range ids {
		if err := ctx.Err(); err != nil {
			return out, res, err
		}
		if !eventID(id) {
			res.Reject("manifest event %d: bad event uuid: only letters, digits and dashes name an event file", k)
			continue
		}
		rc, err := open(ctx, id+".json")
		if err != nil {
			res.Reject("manifest event %d%s: %v", k, feeds.Named(id), err)
			continue
		}
		ins, r, err := Parse(rc, f, now)
		rc.Close()
		if err != nil {
			res.Reject("manifest event %d%s: %v", k, feeds.Named(id), err)
			continue
		}
		out = append(out, ins...)
		res.Add(r)
	}
	return out, res, nil
}

// eventID reports whether id may name an event file of a feed: the
// letters, digits and dashes of a UUID only, so that a manifest cannot
// point outside the feed ("../", "%2e%2e%2f", "?", "#", "@").
func eventID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-') {
			return false
		}
	}
	return true
}
