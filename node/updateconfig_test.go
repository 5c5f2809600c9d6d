package node

import (
	"strings"
	"testing"
	"time"
)

// TestUpdateSettleConfig: update.settle must be shorter than the wave
// timeout (default 30m); a server whose config says otherwise does not
// start, rather than run without update plans.
func TestUpdateSettleConfig(t *testing.T) {
	f := func(settle, wave time.Duration, wantErr bool) {
		t.Helper()
		cfg := DefaultConfig()
		cfg.DataDir = t.TempDir()
		cfg.Update.Settle, cfg.Update.WaveTimeout = Duration(settle), Duration(wave)
		err := cfg.Validate()
		if (err != nil) != wantErr || (err != nil && !strings.Contains(err.Error(), "update.settle")) {
			t.Errorf("settle %s, wave timeout %s: %v", settle, wave, err)
		}
	}
	f(0, 0, false)
	f(30*time.Second, 2*time.Minute, false)
	f(5*time.Minute, 0, false)
	f(5*time.Minute, 2*time.Minute, true)
	f(30*time.Minute, 0, true)
}

// TestUpdateRepositoriesConfig: a repository needs a unique one-word
// name, an https URL (http only to loopback) and an interval of a minute
// or more; the error names the entry and its key.
func TestUpdateRepositoriesConfig(t *testing.T) {
	f := func(want string, rs ...RepositoryConfig) {
		t.Helper()
		cfg := DefaultConfig()
		cfg.DataDir = t.TempDir()
		cfg.Update.Repositories = rs
		err := cfg.Validate()
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%+v: %v, want %q", rs, err, want)
		}
	}
	ok := RepositoryConfig{Name: "acme", URL: "https://updates.acme.example/index.json"}
	f("", ok)
	f("", RepositoryConfig{Name: "local", URL: "http://127.0.0.1:8080/index.json", Interval: Duration(time.Minute), Products: []string{"fw"}})
	f("", RepositoryConfig{Name: "local", URL: "http://[::1]:8080/index.json"})
	f("update.repositories[1].name: \"acme\" is there twice", ok, ok)
	f("update.repositories[0].name", RepositoryConfig{URL: ok.URL})
	f("http only to a loopback address", RepositoryConfig{Name: "m", URL: "http://mirror.example/index.json"})
	f("want https", RepositoryConfig{Name: "m", URL: "ftp://mirror.example/index.json"})
	f("not an absolute URL", RepositoryConfig{Name: "m", URL: "index.json"})
	f("update.repositories[0].interval: 10s is under a minute", RepositoryConfig{Name: "m", URL: ok.URL, Interval: Duration(10 * time.Second)})
	f("update.repositories[0].products", RepositoryConfig{Name: "m", URL: ok.URL, Products: []string{"a b"}})
	if err := (Config{}).Update.validate(); err != nil {
		t.Errorf("empty update config: %v", err)
	}
}
