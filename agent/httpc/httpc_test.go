package httpc

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func newServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *Client) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	c := &Client{TLS: srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()}
	t.Cleanup(func() { c.Close() })
	return srv, c
}

func TestBodiesAndKeepAlive(t *testing.T) {
	srv, c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/echo":
			w.Header().Set("X-Method", r.Method)
			fmt.Fprintf(w, "%s %s %s", r.Method, r.Header.Get("Content-Type"), body)
		case "/chunked":
			for i := range 3 {
				fmt.Fprintf(w, "part%d;", i)
				w.(http.Flusher).Flush()
			}
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		}
	})
	ctx := context.Background()
	resp, err := c.Do(ctx, "POST", srv.URL+"/echo?x=1", map[string]string{"Content-Type": "application/json"}, []byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 200 || string(resp.Body) != `POST application/json {"a":1}` || resp.Header["x-method"] != "POST" {
		t.Fatalf("got %d %q %v", resp.Status, resp.Body, resp.Header)
	}
	first := c.conn
	resp, err = c.Do(ctx, "GET", srv.URL+"/chunked", nil, nil)
	if err != nil || string(resp.Body) != "part0;part1;part2;" {
		t.Fatalf("chunked: %v %q", err, resp.Body)
	}
	resp, err = c.Do(ctx, "GET", srv.URL+"/empty", nil, nil)
	if err != nil || resp.Status != 204 || len(resp.Body) != 0 {
		t.Fatalf("204: %v %+v", err, resp)
	}
	if c.conn != first {
		t.Fatal("the connection was not kept alive")
	}
	// The server drops idle connections: the next request redials.
	srv.CloseClientConnections()
	resp, err = c.Do(ctx, "GET", srv.URL+"/echo", nil, nil)
	if err != nil || !strings.HasPrefix(string(resp.Body), "GET") {
		t.Fatalf("after the server closed the connection: %v", err)
	}
}

func TestContextCancelsLongRequest(t *testing.T) {
	srv, c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.Do(ctx, "GET", srv.URL+"/", nil, nil); err == nil {
		t.Fatal("no error")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("the context did not stop the request")
	}
}

func TestRefusesUntrustedServer(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	c := &Client{TLS: &tls.Config{MinVersion: tls.VersionTLS12}}
	if _, err := c.Do(context.Background(), "GET", srv.URL, nil, nil); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("got %v, want a certificate error", err)
	}
	if _, err := c.Do(context.Background(), "GET", "http://example.com/", nil, nil); err == nil {
		t.Fatal("plain http accepted")
	}
}
