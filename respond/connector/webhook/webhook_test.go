package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil"
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

	gen, _ := webhook.New(webhook.Options{URL: srv.URL, Secret: "s3", Headers: map[string]string{"Authorization": "Bearer x"}})
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

	slack, _ := webhook.New(webhook.Options{URL: srv.URL, Format: webhook.FormatSlack})
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
