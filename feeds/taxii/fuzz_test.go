package taxii

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/feeds/internal/feedtest"
)

var now = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

// stub is a TAXII server in an http.RoundTripper: fixed bodies for the
// discovery, collections and objects resources, and a date for the
// X-TAXII-Date-Added-Last of object pages.
type stub struct {
	discovery, collections, objects []byte
	dateAddedLast                   string
}

func (s *stub) RoundTrip(r *http.Request) (*http.Response, error) {
	resp := &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Header: http.Header{}, Request: r}
	var body []byte
	switch p := r.URL.Path; {
	case p == "/taxii2/":
		body = s.discovery
	case strings.HasSuffix(p, "/collections/"):
		body = s.collections
	case strings.HasSuffix(p, "/objects/"):
		body = s.objects
		resp.Header.Set("X-TAXII-Date-Added-Last", s.dateAddedLast)
	default:
		resp.StatusCode, resp.Status, body = http.StatusNotFound, "404 Not Found", []byte("not found")
	}
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	return resp, nil
}

// FuzzFetch checks, over any discovery, collections and objects responses
// a server may send, that Fetch never panics or pages for ever, that an
// error says what it cannot do, that the result has one error per
// rejection and imports no more objects than indicators returned, that
// every indicator is canonical with the feed's name and a confidence in
// 1..100, and that the added_after to use next never goes back.
func FuzzFetch(f *testing.F) {
	bundle := feedtest.File(f, "testdata/bundle21.json")
	objects := `{"more": false, "objects": ` + string(bundle[strings.Index(string(bundle), "["):strings.LastIndex(string(bundle), "]")+1]) + `}`
	cols := `{"collections": [{"id": "91a7b528-80eb-42ed-a74d-c6fbd5a26116", "title": "IoT indicators", "can_read": true},
		{"id": "64993447-4d7e-4f70-b94d-d7f22742ff63", "title": "write only", "can_write": true}]}`
	disc := `{"title": "test", "default": "/api1/", "api_roots": ["/api1/", "/api2/"]}`
	f.Add([]byte(disc), []byte(cols), []byte(objects), "2025-01-01T00:09:00Z")
	f.Add([]byte(`{"api_roots": ["http://[::1"]}`), []byte(cols), []byte(objects), "")
	f.Add([]byte(`{"api_roots": []}`), []byte(`{"collections": [{"id": "x", "can_read": true}, {"id": "y", "can_read": true}]}`), []byte(objects), "")
	f.Add([]byte(disc), []byte(`{"collections": [{"id": "../..", "can_read": true}]}`), []byte(`{"more": true, "next": "1", "objects": []}`), "1999-01-01T00:00:00Z")
	f.Add([]byte(disc), []byte(cols), []byte(`{"more": true, "objects": [1, null]}`), "not a date")
	for _, s := range feedtest.EdgeJSON {
		f.Add([]byte(disc), []byte(cols), []byte(s), "")
		f.Add([]byte(s), []byte(s), []byte(s), "")
	}
	after := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, discovery, collections, objects []byte, dateAddedLast string) {
		c := &Client{HTTP: &http.Client{Transport: &stub{discovery, collections, objects, dateAddedLast}}, MaxPages: 3}
		fd := &feeds.Feed{Name: "taxii", Source: "http://taxii.example/taxii2/"}
		ins, res, last, err := c.Fetch(context.Background(), fd, after, now)
		feedtest.Error(t, err)
		feedtest.Result(t, res, -1)
		if res.Imported > len(ins) {
			t.Fatalf("%d objects imported as %d indicators", res.Imported, len(ins))
		}
		feedtest.Indicators(t, ins, "taxii")
		if last.Before(after) {
			t.Fatalf("added_after went back from %v to %v", after, last)
		}
	})
}

// TestFetchResponseTooLarge checks that a response is read up to
// MaxResponse bytes and no more, with an error that says so.
func TestFetchResponseTooLarge(t *testing.T) {
	big := `{"collections": [{"id": "x", "can_read": true, "title": "` + strings.Repeat("x", 2000) + `"}]}`
	c := &Client{HTTP: &http.Client{Transport: &stub{collections: []byte(big), objects: []byte(`{"objects": []}`)}}, MaxResponse: 1000}
	fd := &feeds.Feed{Name: "taxii", Source: "http://taxii.example/api1/"}
	if _, _, _, err := c.Fetch(context.Background(), fd, time.Time{}, now); err == nil || !strings.Contains(err.Error(), "larger than 1000 bytes") {
		t.Fatalf("error %v", err)
	}
	c.MaxResponse = int64(len(big))
	if _, _, _, err := c.Fetch(context.Background(), fd, time.Time{}, now); err != nil {
		t.Fatalf("response of exactly MaxResponse bytes: %v", err)
	}
}
