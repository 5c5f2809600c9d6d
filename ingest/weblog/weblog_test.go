package weblog

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func check(t *testing.T, line string, want map[string]any) {
	t.Helper()
	r, err := Parse([]byte(line))
	if err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	ev := Event(&r, "")
	b, err := ev.AppendJSON(nil, true)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	fields, _ := m["fields"].(map[string]any)
	for k, w := range want {
		var got any
		if after, ok := strings.CutPrefix(k, "fields."); ok {
			got = fields[after]
		} else if after, ok := strings.CutPrefix(k, "network."); ok {
			nw, _ := m["network"].(map[string]any)
			got = nw[after]
		} else {
			got = m[k]
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(w)
		if string(gb) != string(wb) {
			t.Errorf("%q: %s: got %s, want %s", line, k, gb, wb)
		}
	}
}

func TestParse(t *testing.T) {
	// The combined-format example of Apache httpd's documentation
	// ("Log Files", Combined Log Format).
	check(t, `127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"`,
		map[string]any{"time": "2000-10-10T20:55:36Z", "kind": "web", "source": "weblog", "action": "access", "outcome": "success",
			"network.src_ip": "127.0.0.1", "fields.user.name": "frank", "fields.http.request.method": "GET",
			"fields.url.original": "/apache_pb.gif", "fields.url.path": "/apache_pb.gif", "fields.url.extension": "gif",
			"fields.http.version": "1.0", "fields.http.response.status_code": 200, "fields.http.response.bytes": 2326,
			"fields.http.request.referrer": "http://www.example.com/start.html", "fields.user_agent.original": "Mozilla/4.08 [en] (Win98; I ;Nav)"})
	// The common format, bytes "-", a query, IPv6.
	check(t, `2001:db8::7 - - [05/Jan/2026:11:00:00 +0000] "POST /cgi-bin/luci?cmd=x HTTP/1.1" 404 -`,
		map[string]any{"network.src_ip": "2001:db8::7", "outcome": "failure", "fields.url.path": "/cgi-bin/luci",
			"fields.url.query": "cmd=x", "fields.http.response.bytes": nil, "fields.user.name": nil})
	// nginx escapes a quote and non-printable bytes as \xHH; Apache a
	// quote as \".
	check(t, `10.0.0.5 - - [05/Jan/2026:11:00:00 +0000] "\x16\x03\x01\x00\xF7\x01" 400 157 "-" "-"`,
		map[string]any{"fields.http.request.line": "\x16\x03\x01\x00\uFFFD\x01", "fields.http.request.method": nil, "fields.user_agent.original": nil})
	check(t, `10.0.0.5 - - [05/Jan/2026:11:00:00 +0000] "GET /a HTTP/1.1" 200 1 "-" "say \"hi\" \\o/"`,
		map[string]any{"fields.user_agent.original": `say "hi" \o/`})
	check(t, `10.0.0.5 - - [05/Jan/2026:11:00:00 +0000] "GET /a HTTP/1.1" 200 1 "-" "nginx \x22q\x22"`,
		map[string]any{"fields.user_agent.original": `nginx "q"`})
	// An absolute target (a proxy).
	check(t, `10.0.0.5 - - [05/Jan/2026:11:00:00 +0000] "GET http://cam.local:8080/snap.jpg?x=1 HTTP/1.1" 200 1 "-" "-"`,
		map[string]any{"fields.url.domain": "cam.local:8080", "fields.url.path": "/snap.jpg", "fields.url.query": "x=1"})
	// JSON with nginx's variable names (log_format escape=json).
	check(t, `{"time_iso8601":"2026-01-05T11:00:00+00:00","remote_addr":"10.0.0.9","remote_user":"","request":"GET /login.php?id=1%20UNION%20SELECT%201 HTTP/1.1","status":"200","body_bytes_sent":"12","http_referer":"","http_user_agent":"sqlmap/1.7","host":"gw.local","request_time":"0.003"}`,
		map[string]any{"network.src_ip": "10.0.0.9", "fields.url.query": "id=1%20UNION%20SELECT%201", "fields.http.request.method": "GET",
			"fields.http.response.status_code": 200, "fields.user_agent.original": "sqlmap/1.7", "fields.url.domain": "gw.local",
			"fields.event.duration": 3e6, "fields.user.name": nil, "fields.http.request.referrer": nil})
}

func TestParseErrors(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		_, err := Parse([]byte(in))
		if err == nil || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", in, err, want)
		}
	}
	f("hello", "no client")
	f(`1.2.3.4 - - 05/Jan/2026 "GET / HTTP/1.1" 200 1`, "no [time]")
	f(`1.2.3.4 - - [yesterday] "GET / HTTP/1.1" 200 1`, `time "yesterday"`)
	f(`1.2.3.4 - - [05/Jan/2026:11:00:00 +0000] "GET / HTTP/1.1 200 1`, "no closing quote after the request")
	f(`1.2.3.4 - - [05/Jan/2026:11:00:00 +0000] "GET / HTTP/1.1" OK 1`, `status "OK"`)
	f(`1.2.3.4 - - [05/Jan/2026:11:00:00 +0000] "GET / HTTP/1.1" 200 1 "ref`, "no closing quote after the referer")
	f(`{"remote_addr":"1.2.3.4"}`, "no time")
	f(`{"time":"2026-01-05T11:00:00Z","remote_addr":"1.2.3.4"}`, "no request, uri or status")
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"`,
		`10.0.0.5 - - [05/Jan/2026:11:00:00 +0000] "\x16\x03\x01" 400 157 "-" "a \"b\" c"`,
		`{"time_iso8601":"2026-01-05T11:00:00+00:00","remote_addr":"10.0.0.9","request":"GET /x?y HTTP/1.1","status":200,"request_time":0.1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err != nil {
			return
		}
		ev := Event(&r, "h")
		if _, err := ev.AppendJSON(nil, true); err != nil {
			t.Fatalf("%q: event does not encode: %v", b, err)
		}
	})
}
