package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/internal/egress"
	"github.com/vigil-iot/vigil/respond/connector/webhook"
)

func TestWebhook(t *testing.T) {
	type got struct {
		header http.Header
		body   []byte
	}
	ch := make(chan got, 4)
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- got{r.Header, b}
		w.WriteHeader(status)
		io.WriteString(w, "nope")
	}))
	defer srv.Close()
	a := vigil.Action{ID: "act-1", Type: "notify", DeviceID: "cam-1", Playbook: "p", Params: map[string]string{"text": "isolated cam-1"}}
	ctx := context.Background()

	// the default outbound policy refuses loopback
	def, _ := webhook.New(webhook.Options{URL: srv.URL, Headers: map[string]string{"Authorization": "Bearer x"}})
	if _, err := def.Execute(ctx, a); !errors.Is(err, egress.ErrDenied) {
		t.Fatalf("webhook on loopback by default: %v, want ErrDenied", err)
	}
	loop := egress.Loopback().Client(10 * time.Second)
	gen, _ := webhook.New(webhook.Options{URL: srv.URL, Secret: "s3", Headers: map[string]string{"Authorization": "Bearer x"}, Client: loop})
	if gen.Name() != "webhook" {
		t.Fatal(gen.Name())
	}
	if res, err := gen.Execute(ctx, a); err != nil || res.Acknowledged.IsZero() {
		t.Fatalf("%+v %v", res, err)
	}
	g := <-ch
	var m webhook.Message
	if err := json.Unmarshal(g.body, &m); err != nil || m.Text != "isolated cam-1" || m.Action.ID != "act-1" || m.Action.DeviceID != "cam-1" {
		t.Fatalf("body %s", g.body)
	}
	mac := hmac.New(sha256.New, []byte("s3"))
	mac.Write(g.body)
	if g.header.Get("X-Vigil-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) ||
		g.header.Get("Authorization") != "Bearer x" || g.header.Get("Idempotency-Key") != "act-1" {
		t.Fatalf("headers %v", g.header)
	}

	slack, _ := webhook.New(webhook.Options{URL: srv.URL, Format: webhook.FormatSlack, Client: loop})
	if slack.Name() != "slack" {
		t.Fatal(slack.Name())
	}
	a.Params = nil
	if _, err := slack.Execute(ctx, a); err != nil {
		t.Fatal(err)
	}
	if g := <-ch; string(g.body) != `{"text":"Vigil: notify on device cam-1 (playbook p)"}` {
		t.Fatalf("slack body %s", g.body)
	}

	status = http.StatusForbidden
	res, err := slack.Execute(ctx, a)
	<-ch
	if err == nil || res.Acknowledged.IsZero() || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("403: %+v %v", res, err)
	}
	srv.Close()
	if res, err := slack.Execute(ctx, a); err == nil || !res.Acknowledged.IsZero() {
		t.Fatalf("closed server: %+v %v", res, err)
	}
}

// TestWebhookRedirect: a webhook that redirects to another origin gets
// there without its configured token headers.
func TestWebhookRedirect(t *testing.T) {
	got := make(chan http.Header, 1)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() }))
	defer other.Close()
	first := httptest.NewServer(http.RedirectHandler(other.URL+"/hook", http.StatusTemporaryRedirect))
	defer first.Close()
	w, _ := webhook.New(webhook.Options{URL: first.URL, Headers: map[string]string{"Authorization": "Bearer x", "X-Api-Key": "k"},
		Client: egress.Loopback().Client(10 * time.Second)})
	if _, err := w.Execute(t.Context(), vigil.Action{ID: "a1", Type: "notify"}); err != nil {
		t.Fatal(err)
	}
	if h := <-got; h.Get("Authorization") != "" || h.Get("X-Api-Key") != "" || h.Get("Idempotency-Key") != "a1" {
		t.Errorf("headers at the other origin: %v", h)
	}
}
