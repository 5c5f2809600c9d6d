package export

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vigil-iot/vigil"
)

// hecServer implements the HTTP Event Collector's semantics: the token
// must match, the body is concatenated event envelopes, each with an
// "event"; on the first bad event (message "bad") it answers 400 code 6
// with its invalid-event-number, having indexed the events before it. It
// answers 503 (code 9, server busy) while busy > 0.
type hecServer struct {
	mu       sync.Mutex
	busy     int
	indexed  []string // alert ids, in order
	requests [][]string
}

func (s *hecServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reply := func(status int, body string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/services/collector/event" {
		reply(404, `{"text":"The requested URL was not found on this server.","code":404}`)
		return
	}
	if r.Header.Get("Authorization") != "Splunk tok-123" {
		reply(403, `{"text":"Invalid token","code":4}`)
		return
	}
	if s.busy > 0 {
		s.busy--
		reply(503, `{"text":"Server is busy","code":9}`)
		return
	}
	dec := json.NewDecoder(r.Body)
	var ids []string
	for n := 0; dec.More(); n++ {
		var env struct {
			Time       float64        `json:"time"`
			Sourcetype string         `json:"sourcetype"`
			Event      map[string]any `json:"event"`
		}
		if err := dec.Decode(&env); err != nil || env.Event == nil {
			reply(400, fmt.Sprintf(`{"text":"Invalid data format","code":6,"invalid-event-number":%d}`, n))
			return
		}
		id, _ := env.Event["event"].(map[string]any)["id"].(string)
		ids = append(ids, id)
		if env.Event["message"] == "bad" {
			s.requests = append(s.requests, ids)
			reply(400, fmt.Sprintf(`{"text":"Invalid data format","code":6,"invalid-event-number":%d}`, n))
			return
		}
		s.indexed = append(s.indexed, id)
	}
	s.requests = append(s.requests, ids)
	reply(200, `{"text":"Success","code":0}`)
}

func testAlerts(titles ...string) []vigil.Alert {
	var out []vigil.Alert
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for i, title := range titles {
		out = append(out, vigil.Alert{ID: fmt.Sprintf("al-%d", i), Title: title, Detector: "sigma", Severity: vigil.SeverityHigh,
			Created: t0.Add(time.Duration(i) * time.Second), Count: 1})
	}
	return out
}

// noSleep records the waits instead of waiting.
type noSleep struct{ waits []time.Duration }

func (n *noSleep) sleep(_ context.Context, d time.Duration) error {
	n.waits = append(n.waits, d)
	return nil
}

func TestHECRetriesOnlyRefused(t *testing.T) {
	srv := &hecServer{busy: 1}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	sink, err := NewHEC(HECOptions{URL: ts.URL, Token: "tok-123", Client: ts.Client()})
	if err != nil {
		t.Fatal(err)
	}
	ns := &noSleep{}
	e, err := New(sink, Options{Name: "splunk", Sleep: ns.sleep})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Handle(context.Background(), testAlerts("a", "b", "bad", "c", "d")); err != nil {
		t.Fatal(err)
	}
	// busy, then a, b indexed and bad refused, then c, d alone.
	want := [][]string{{"al-0", "al-1", "al-2"}, {"al-3", "al-4"}}
	if fmt.Sprint(srv.requests) != fmt.Sprint(want) {
		t.Errorf("requests %v, want %v", srv.requests, want)
	}
	if fmt.Sprint(srv.indexed) != "[al-0 al-1 al-3 al-4]" {
		t.Errorf("indexed %v", srv.indexed)
	}
	if fmt.Sprint(ns.waits) != "[1s 2s]" {
		t.Errorf("waits %v, want [1s 2s]", ns.waits)
	}
	if got := counterValue(e.dropped); got != 1 {
		t.Errorf("dropped %v, want 1", got)
	}
	if got := counterValue(e.sent); got != 4 {
		t.Errorf("sent %v, want 4", got)
	}
}

func TestHECBadTokenFailsBatch(t *testing.T) {
	srv := &hecServer{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	sink, _ := NewHEC(HECOptions{URL: ts.URL, Token: "wrong", Client: ts.Client()})
	ns := &noSleep{}
	e, _ := New(sink, Options{Name: "splunk", Sleep: ns.sleep, Attempts: 3})
	err := e.Handle(context.Background(), testAlerts("a"))
	if err == nil || !strings.Contains(err.Error(), "Invalid token") {
		t.Fatalf("err = %v, want the collector's refusal", err)
	}
	if len(ns.waits) != 2 || len(srv.indexed) != 0 {
		t.Errorf("waits %v indexed %v", ns.waits, srv.indexed)
	}
	if _, err := NewHEC(HECOptions{URL: "ftp://x", Token: "t"}); err == nil {
		t.Error("NewHEC accepted an ftp URL")
	}
}

// bulkServer implements Elasticsearch's bulk API: NDJSON action and
// document lines, "create" with _index and _id, 409 for an id already
// indexed, 400 mapper_parsing_exception for a document whose message is
// "bad", 429 once for each id in reject.
type bulkServer struct {
	mu       sync.Mutex
	docs     map[string]map[string]any
	reject   map[string]bool
	requests [][]string
}

func (s *bulkServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/_bulk" || r.Header.Get("Content-Type") != "application/x-ndjson" {
		http.Error(w, `{"error":"bad request"}`, 400)
		return
	}
	if r.Header.Get("Authorization") != "ApiKey key-1" {
		http.Error(w, `{"error":{"type":"security_exception"}}`, 401)
		return
	}
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(nil, 1<<20)
	var items []map[string]any
	var ids []string
	for sc.Scan() {
		var act map[string]struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &act); err != nil || len(act) != 1 {
			http.Error(w, `{"error":{"type":"illegal_argument_exception","reason":"Malformed action/metadata line"}}`, 400)
			return
		}
		meta, ok := act["create"]
		if !ok || meta.Index != "vigil-alerts" || meta.ID == "" || !sc.Scan() {
			http.Error(w, `{"error":{"type":"illegal_argument_exception","reason":"bad action"}}`, 400)
			return
		}
		var doc map[string]any
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			http.Error(w, `{"error":{"type":"parse_exception"}}`, 400)
			return
		}
		ids = append(ids, meta.ID)
		res := map[string]any{"_index": meta.Index, "_id": meta.ID}
		switch {
		case s.reject[meta.ID]:
			delete(s.reject, meta.ID)
			res["status"] = 429
			res["error"] = map[string]any{"type": "es_rejected_execution_exception", "reason": "rejected execution"}
		case doc["message"] == "bad":
			res["status"] = 400
			res["error"] = map[string]any{"type": "mapper_parsing_exception", "reason": "failed to parse"}
		case s.docs[meta.ID] != nil:
			res["status"] = 409
			res["error"] = map[string]any{"type": "version_conflict_engine_exception", "reason": "document already exists"}
		default:
			s.docs[meta.ID] = doc
			res["status"] = 201
		}
		items = append(items, map[string]any{"create": res})
	}
	s.requests = append(s.requests, ids)
	errs := false
	for _, it := range items {
		if it["create"].(map[string]any)["status"].(int) >= 300 {
			errs = true
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"took": 1, "errors": errs, "items": items})
}

func TestBulkRetriesOnlyRefused(t *testing.T) {
	srv := &bulkServer{docs: map[string]map[string]any{"al-4": {}}, reject: map[string]bool{"al-1": true}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	sink, err := NewBulk(BulkOptions{URL: ts.URL, Token: "key-1", Client: ts.Client()})
	if err != nil {
		t.Fatal(err)
	}
	ns := &noSleep{}
	e, _ := New(sink, Options{Name: "es", Sleep: ns.sleep, Encoder: ECS})
	if err := e.Handle(context.Background(), testAlerts("a", "b", "bad", "c", "d")); err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"al-0", "al-1", "al-2", "al-3", "al-4"}, {"al-1"}}
	if fmt.Sprint(srv.requests) != fmt.Sprint(want) {
		t.Errorf("requests %v, want %v", srv.requests, want)
	}
	if len(srv.docs) != 4 || srv.docs["al-2"] != nil {
		t.Errorf("indexed %d docs: %v", len(srv.docs), srv.docs)
	}
	if got := counterValue(e.dropped); got != 1 {
		t.Errorf("dropped %v, want 1", got)
	}
	if srv.docs["al-0"]["@timestamp"] != "2026-03-01T10:00:00Z" {
		t.Errorf("al-0 = %v", srv.docs["al-0"])
	}
}

// TestExporterSkipsAccepted: when a batch fails after some alerts were
// accepted, the redelivered batch sends only the others.
func TestExporterSkipsAccepted(t *testing.T) {
	srv := &bulkServer{docs: map[string]map[string]any{}, reject: map[string]bool{"al-1": true}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	sink, _ := NewBulk(BulkOptions{URL: ts.URL, Token: "key-1", Client: ts.Client()})
	e, _ := New(sink, Options{Name: "es", Sleep: (&noSleep{}).sleep, Attempts: 1})
	alerts := testAlerts("a", "b", "c")
	if err := e.Handle(context.Background(), alerts); err == nil {
		t.Fatal("Handle succeeded with one attempt and a refused alert")
	}
	if err := e.Handle(context.Background(), alerts); err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"al-0", "al-1", "al-2"}, {"al-1"}}
	if fmt.Sprint(srv.requests) != fmt.Sprint(want) {
		t.Errorf("requests %v, want %v", srv.requests, want)
	}
}

func FuzzParseBulkReply(f *testing.F) {
	f.Add([]byte(`{"took":1,"errors":false,"items":[{"create":{"_id":"a","status":201}}]}`), 1)
	f.Add([]byte(`{"errors":true,"items":[{"create":{"status":429}},{"index":{"status":400,"error":{"type":"x","reason":"y"}}}]}`), 2)
	f.Add([]byte(`{"items":[{}]}`), 1)
	f.Fuzz(func(t *testing.T, raw []byte, n int) {
		ie, err := ParseBulkReply(raw, n)
		if err != nil {
			return
		}
		if ie != nil {
			for _, i := range ie.Retry {
				if i < 0 || i >= n {
					t.Fatalf("retry index %d out of %d", i, n)
				}
			}
			for i := range ie.Drop {
				if i < 0 || i >= n {
					t.Fatalf("drop index %d out of %d", i, n)
				}
			}
		}
		_ = bytes.TrimSpace(raw)
	})
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}
