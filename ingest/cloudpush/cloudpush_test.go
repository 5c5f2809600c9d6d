package cloudpush_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus"
	"github.com/vigil-iot/vigil/bus/bustest"
	"github.com/vigil-iot/vigil/bus/natsbus"
	"github.com/vigil-iot/vigil/ingest/azure"
	"github.com/vigil-iot/vigil/ingest/cloudpush"
	"github.com/vigil-iot/vigil/ingest/cloudtrail"
	"github.com/vigil-iot/vigil/ingest/gcp"
	"github.com/vigil-iot/vigil/wire"
)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

var formats = map[string]cloudpush.Open{
	"cloudtrail": func(b io.Reader, name string) cloudpush.Records { return cloudtrail.NewReader(b, name) },
	"azure":      func(b io.Reader, name string) cloudpush.Records { return azure.NewReader(b, name) },
	"gcp":        func(b io.Reader, name string) cloudpush.Records { return gcp.NewReader(b, name) },
}

func openBus(t *testing.T, cfg natsbus.Config) *natsbus.Bus {
	t.Helper()
	cfg.DataDir = t.TempDir()
	b, err := natsbus.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func serve(t *testing.T, o cloudpush.Options) *httptest.Server {
	t.Helper()
	o.Formats = formats
	o.Clock = fixedClock(time.Date(2026, 3, 7, 0, 0, 0, 0, time.UTC))
	h, err := cloudpush.NewHandler(o)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+cloudpush.Path, h)
	mux.Handle("POST "+cloudpush.PathFormat, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, srv *httptest.Server, path string, hdr map[string]string, body []byte) (int, http.Header, wire.Response) {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r wire.Response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, r
}

func testdata(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile("../" + p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPushThroughBus: each platform's push form (an EventBridge event, an
// Azure {"records":[...]} batch, a Pub/Sub push message, a gzipped
// CloudTrail log file), by path and by header, goes through a real NATS
// JetStream bus; bad records are rejected one by one.
func TestPushThroughBus(t *testing.T) {
	b := openBus(t, natsbus.Config{Partitions: 2, Groups: []string{"test"}})
	srv := serve(t, cloudpush.Options{Publisher: b})

	rec := `{"eventVersion":"1.08","eventTime":"2026-03-02T22:46:00Z","eventSource":"iot.amazonaws.com","eventName":"UpdateCertificate","userIdentity":{"type":"IAMUser","userName":"fleet-admin"},"requestParameters":{"certificateId":"c1","newStatus":"REVOKED"}}`
	eb := `{"version":"0","id":"6f1e","detail-type":"AWS API Call via CloudTrail","source":"aws.iot","account":"111122223333","time":"2026-03-02T22:46:00Z","region":"us-east-1","detail":` + rec + `}`
	if code, _, r := post(t, srv, "/api/v1/ingest/cloud/cloudtrail", nil, []byte(eb)); code != 200 || r.Accepted != 1 {
		t.Fatalf("eventbridge: %d %+v", code, r)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(testdata(t, "cloudtrail/testdata/takeover.json"))
	zw.Close()
	if code, _, r := post(t, srv, cloudpush.Path, map[string]string{"X-Vigil-Format": "CloudTrail", "Content-Encoding": "gzip"}, gz.Bytes()); code != 200 || r.Accepted != 9 {
		t.Fatalf("gzipped log file: %d %+v", code, r)
	}
	az := `{"records":[` + strings.TrimSpace(strings.Split(string(testdata(t, "azure/testdata/activity.ndjson")), "\n")[0]) + `,{"operationName":"x"}]}`
	code, _, r := post(t, srv, "/api/v1/ingest/cloud/azure", nil, []byte(az))
	if code != 200 || r.Accepted != 1 || r.RejectedCount != 1 || len(r.Rejected) != 1 || *r.Rejected[0].Index != 1 || !strings.Contains(r.Rejected[0].Error, "time: missing") {
		t.Fatalf("azure: %d %+v", code, r)
	}
	entry := `{"protoPayload":{"methodName":"google.cloud.iot.v1.DeviceManager.ModifyCloudToDeviceConfig","serviceName":"cloudiot.googleapis.com","authenticationInfo":{"principalEmail":"contractor-x@gmail.example"}},"insertId":"p1","resource":{"type":"cloudiot_device","labels":{"project_id":"p","device_id":"pump-07"}},"timestamp":"2026-03-05T08:05:11Z","logName":"projects/p/logs/cloudaudit.googleapis.com%2Factivity"}`
	push := `{"message":{"data":"` + base64.StdEncoding.EncodeToString([]byte(entry)) + `","messageId":"9","publishTime":"2026-03-05T08:05:12Z"},"subscription":"projects/p/subscriptions/vigil"}`
	if code, _, r := post(t, srv, "/api/v1/ingest/cloud/gcp", nil, []byte(push)); code != 200 || r.Accepted != 1 {
		t.Fatalf("pubsub: %d %+v", code, r)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	var got []vigil.Event
	done := make(chan error, 1)
	go func() {
		done <- b.ConsumeEvents(ctx, "test", func(_ context.Context, _ int, evs []vigil.Event) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, evs...)
			if len(got) >= 12 {
				cancel()
			}
			return nil
		})
	}()
	<-ctx.Done()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 12 {
		t.Fatalf("consumed %d events, want 12", len(got))
	}
	var srcs []string
	for _, e := range got {
		srcs = append(srcs, e.Source)
		if !e.Received.Equal(time.Date(2026, 3, 7, 0, 0, 0, 0, time.UTC)) || e.Kind != "cloud" || e.ID == "" {
			t.Errorf("event: %+v", e)
		}
		if e.Source == "gcp" && (e.DeviceID != "pump-07" || e.Fields["user.name"] != "contractor-x@gmail.example") {
			t.Errorf("pubsub event: %+v", e)
		}
	}
	sort.Strings(srcs)
	if s := strings.Join(srcs, " "); s != "azure cloudtrail cloudtrail cloudtrail cloudtrail cloudtrail cloudtrail cloudtrail cloudtrail cloudtrail cloudtrail gcp" {
		t.Errorf("sources: %s", s)
	}
}

// TestRefusals: unknown or missing formats, over-limit bodies, bad
// encodings, a body of bad records, events too far in the future.
func TestRefusals(t *testing.T) {
	b := openBus(t, natsbus.Config{Partitions: 1, Groups: []string{"test"}})
	srv := serve(t, cloudpush.Options{Publisher: b, MaxBytes: 4096, MaxRecords: 3})
	rec := `{"eventTime":"2026-03-02T22:46:00Z","eventSource":"s","eventName":"n"}`
	f := func(path string, hdr map[string]string, body string, status int, want string) {
		t.Helper()
		code, _, r := post(t, srv, path, hdr, []byte(body))
		msg := ""
		if r.Error != nil {
			msg = r.Error.Message
		}
		for _, rj := range r.Rejected {
			msg += "; " + rj.Error
		}
		if code != status || !strings.Contains(msg, want) {
			t.Errorf("%s %.40q: %d %q, want %d %q", path, body, code, msg, status, want)
		}
	}
	f("/api/v1/ingest/cloud/splunk", nil, rec, 404, `unknown format "splunk": want one of azure, cloudtrail, gcp`)
	f(cloudpush.Path, nil, rec, 400, "no format")
	f("/api/v1/ingest/cloud/cloudtrail", nil, "", 400, "no records in body")
	f("/api/v1/ingest/cloud/cloudtrail", nil, "["+strings.Repeat(rec+",", 100)+rec+"]", 413, "larger than the limit of 4096 bytes")
	f("/api/v1/ingest/cloud/cloudtrail", nil, "["+rec+","+rec+","+rec+","+rec+"]", 413, "more than 3 records")
	f("/api/v1/ingest/cloud/cloudtrail", map[string]string{"Content-Encoding": "br"}, rec, 415, `unsupported content encoding "br"`)
	f("/api/v1/ingest/cloud/cloudtrail", nil, `{"eventTime":"2026-03-09T00:00:00Z","eventSource":"s","eventName":"n"}`, 400, "ahead of the server's clock")
	f("/api/v1/ingest/cloud/gcp", nil, `{"timestamp":"x"}`, 400, "nothing accepted")
	// A gzip bomb: small on the wire, over the limit decompressed.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("[" + strings.Repeat(" ", 1<<20) + rec + "]"))
	zw.Close()
	f("/api/v1/ingest/cloud/cloudtrail", map[string]string{"Content-Encoding": "gzip"}, gz.String(), 413, "larger than the limit")
}

// TestBackpressure: a full bus (a real one, with a small byte limit)
// answers 429 with Retry-After, and nothing of the body is accepted.
func TestBackpressure(t *testing.T) {
	b := openBus(t, natsbus.Config{Partitions: 1, Groups: []string{"test"}, MaxEventBytes: 16 << 10})
	full := false
	for i := 0; i < 2000 && !full; i++ {
		// one event at a time: the bus is full when not even one fits
		err := b.PublishEvents(context.Background(), bustest.Events("full", i, 1, 10))
		if errors.Is(err, bus.ErrBackpressure) {
			full = true
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if !full {
		t.Fatal("the bus never pushed back")
	}
	srv := serve(t, cloudpush.Options{Publisher: b})
	code, hdr, r := post(t, srv, "/api/v1/ingest/cloud/cloudtrail", nil, testdata(t, "cloudtrail/testdata/takeover.json"))
	if code != 429 || hdr.Get("Retry-After") != "1" || r.Accepted != 0 || r.RejectedCount != 9 {
		t.Fatalf("%d %v %+v", code, hdr, r)
	}
}
