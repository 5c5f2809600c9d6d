package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNginxAccessLogsToSigmaHQ: a real nginx (skipped when absent; Debian:
// apt-get install nginx) serves requests of a path traversal, a
// JNDIExploit path, an SQL injection and a scanner; vigil ingest reads
// its access logs, combined and JSON (format guessed), and the SigmaHQ
// webserver rules of the corpus (../shared/corpus/sigma/rules/web;
// skipped when absent) and Vigil's pack detect them.
func TestNginxAccessLogsToSigmaHQ(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Skipf("nginx is not installed: %v", err)
	}
	sigmaWeb := filepath.Join("..", "..", "..", "shared", "corpus", "sigma", "rules", "web", "webserver_generic")
	if _, err := os.Stat(sigmaWeb); err != nil {
		t.Skipf("the SigmaHQ corpus is absent (%s): %v", sigmaWeb, err)
	}
	dir := t.TempDir()
	www := filepath.Join(dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"index.html", "login.php"} {
		if err := os.WriteFile(filepath.Join(www, f), []byte("ok\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	addr := freeAddr(t)
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events {}
http {
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  log_format json escape=json '{"time_iso8601":"$time_iso8601","remote_addr":"$remote_addr","remote_user":"$remote_user","request":"$request","status":"$status","body_bytes_sent":"$body_bytes_sent","http_referer":"$http_referer","http_user_agent":"$http_user_agent","host":"$host","request_time":"$request_time"}';
  access_log %[1]s/access.log combined;
  access_log %[1]s/access.json json;
  server {
    listen %[2]s;
    root %[1]s/www;
  }
}
`, dir, addr)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"))
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx does not listen: %v\n%s%s", err, out, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	get := func(target, agent string) {
		t.Helper()
		req, err := http.NewRequest("GET", "http://"+addr+target, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("User-Agent", agent)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	get("/index.html", "Mozilla/5.0")
	get("/cgi-bin/read?file=../../../etc/passwd", "curl/8.0")
	get("/Basic/Command/Base64/d2hvYW1p", "Java/1.8.0")
	get("/login.php?id=1%20UNION%20SELECT%20user,password%20FROM%20users", "sqlmap/1.7")
	get("/", "Mozilla/5.0 zgrab/0.x")
	// nginx writes a request's log line when it is done: wait for all 5.
	waitLines := func(f string) {
		for {
			b, _ := os.ReadFile(f)
			if strings.Count(string(b), "\n") >= 5 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s", f, b)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitLines(filepath.Join(dir, "access.log"))
	waitLines(filepath.Join(dir, "access.json"))
	for _, log := range []string{"access.log", "access.json"} {
		events := filepath.Join(dir, log+".jsonl")
		o, code := run(t, "ingest", filepath.Join(dir, log), "--output", events)
		if code != 0 || !strings.Contains(o, "records=5 events=5 skipped=0 bad=0") {
			t.Fatalf("%s: ingest: exit %d\n%s", log, code, o)
		}
		o, code = run(t, "detect", "--rules", sigmaWeb, "--input", events)
		if code != 0 {
			t.Fatalf("%s: detect: exit %d\n%s", log, code, o)
		}
		for _, title := range []string{"Path Traversal Exploitation Attempts", "JNDIExploit Pattern", "SQL Injection Strings In URI"} {
			if !strings.Contains(o, `"title":"`+title+`"`) {
				t.Errorf("%s: the SigmaHQ rule %q did not fire:\n%s", log, title, o)
			}
		}
		o, code = run(t, "detect", "--input", events)
		if code != 0 || !strings.Contains(o, "zgrab") && !strings.Contains(strings.ToLower(o), "scanner") {
			t.Errorf("%s: Vigil's pack did not see the scanner: exit %d\n%s", log, code, o)
		}
	}
}
