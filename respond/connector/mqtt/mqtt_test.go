package mqtt_test

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/respond/connector/mqtt"
)

// pluginPaths are where Debian, Ubuntu, Alpine and Fedora put the plugin.
var pluginPaths = []string{
	"/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
	"/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
	"/usr/lib/mosquitto_dynamic_security.so",
	"/usr/lib64/mosquitto_dynamic_security.so",
	"/usr/local/lib/mosquitto_dynamic_security.so",
}

type dynClient struct {
	Username   string              `json:"username"`
	Password   string              `json:"password"`
	Salt       string              `json:"salt"`
	Iterations int                 `json:"iterations"`
	Roles      []map[string]string `json:"roles"`
}

func hashed(t *testing.T, user, pw, role string) dynClient {
	salt := make([]byte, 12)
	rand.Read(salt)
	h, err := pbkdf2.Key(sha512.New, pw, salt, 101, 64)
	if err != nil {
		t.Fatal(err)
	}
	return dynClient{Username: user, Password: base64.StdEncoding.EncodeToString(h), Salt: base64.StdEncoding.EncodeToString(salt),
		Iterations: 101, Roles: []map[string]string{{"rolename": role}}}
}

// broker starts a Mosquitto with the dynamic-security plugin on a free
// loopback port: an "admin" account (dynsec control) and a device "cam-7"
// allowed on devices/#. It returns the broker URL.
func broker(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, e := os.Stat(p); e == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		t.Skip("mosquitto is not installed (apt-get install mosquitto): skipping the broker quarantine test")
	}
	plugin := os.Getenv("VIGIL_TEST_DYNSEC_PLUGIN")
	for _, p := range pluginPaths {
		if _, err := os.Stat(p); plugin == "" && err == nil {
			plugin = p
		}
	}
	if plugin == "" {
		t.Skip("mosquitto_dynamic_security.so not found (set VIGIL_TEST_DYNSEC_PLUGIN): skipping the broker quarantine test")
	}
	dir := t.TempDir()
	allow := func(typ, topic string) map[string]any {
		return map[string]any{"acltype": typ, "topic": topic, "allow": true}
	}
	cfg := map[string]any{
		"defaultACLAccess": map[string]bool{"publishClientSend": false, "publishClientReceive": true, "subscribe": false, "unsubscribe": true},
		"clients":          []dynClient{hashed(t, "admin", "adminpw", "admin"), hashed(t, "cam-7", "campw", "device"), hashed(t, "watcher", "watchpw", "device")},
		"groups":           []any{},
		"roles": []map[string]any{
			{"rolename": "admin", "acls": []any{
				allow("publishClientSend", "$CONTROL/dynamic-security/#"),
				allow("publishClientReceive", "$CONTROL/dynamic-security/#"),
				allow("subscribePattern", "$CONTROL/dynamic-security/#"),
			}},
			{"rolename": "device", "acls": []any{
				allow("publishClientSend", "devices/#"), allow("subscribePattern", "devices/#"),
				allow("publishClientSend", "vigil/#"), allow("subscribePattern", "vigil/#"),
			}},
		},
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	dynsec := filepath.Join(dir, "dynsec.json")
	if err := os.WriteFile(dynsec, b, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := filepath.Join(dir, "mosquitto.conf")
	logf := filepath.Join(dir, "mosquitto.log")
	os.WriteFile(conf, []byte(fmt.Sprintf("per_listener_settings false\nallow_anonymous false\nlistener %d 127.0.0.1\nplugin %s\nplugin_opt_config_file %s\npersistence false\nlog_dest file %s\nlog_type all\n",
		port, plugin, dynsec, logf)), 0o600)
	if os.Getuid() == 0 {
		// Run as root, mosquitto drops to the user "mosquitto", which cannot
		// read the test's private directory: stay root instead.
		f, _ := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString("user root\n")
		f.Close()
	}
	cmd := exec.Command(bin, "-c", conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf)
			t.Logf("mosquitto log:\n%s", b)
		}
	})
	// Ready when it accepts connections (mosquitto's stdout is block-buffered in a pipe).
	for i := 0; ; i++ {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			conn.Close()
			break
		}
		if i == 200 {
			t.Fatalf("mosquitto does not accept connections: %v", err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Sprintf("tcp://127.0.0.1:%d", port)
}

func client(t *testing.T, url, user, pw string, onLost func()) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker(url).SetClientID(user).SetUsername(user).SetPassword(pw).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	if onLost != nil {
		o.SetConnectionLostHandler(func(paho.Client, error) { onLost() })
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	tok.Wait()
	if tok.Error() == nil {
		t.Cleanup(func() { c.Disconnect(0) })
	}
	return c, tok.Error()
}

func act(typ, user string) vigil.Action {
	return vigil.Action{ID: vigil.NewID(), Type: typ, Params: map[string]string{"client_id": user}}
}

func TestQuarantineDisable(t *testing.T) {
	url := broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lost := make(chan struct{}, 1)
	if _, err := client(t, url, "cam-7", "campw", func() { lost <- struct{}{} }); err != nil {
		t.Fatalf("cam-7 cannot connect before quarantine: %v", err)
	}
	c, err := mqtt.New(mqtt.Options{Broker: url, Username: "admin", Password: "adminpw"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Execute(ctx, act("quarantine_client", "cam-7"))
	if err != nil || res.Acknowledged.IsZero() {
		t.Fatalf("quarantine: %+v %v", res, err)
	}
	select {
	case <-lost:
	case <-ctx.Done():
		t.Fatal("cam-7 was not disconnected by the quarantine")
	}
	if _, err := client(t, url, "cam-7", "campw", nil); err == nil {
		t.Fatal("cam-7 could log in again while quarantined")
	}
	// Twice is fine (a retry).
	if _, err := c.Execute(ctx, act("quarantine_client", "cam-7")); err != nil {
		t.Fatalf("second quarantine: %v", err)
	}
	if _, err := c.Execute(ctx, act("release_client", "cam-7")); err != nil {
		t.Fatalf("release: %v", err)
	}
	if _, err := client(t, url, "cam-7", "campw", nil); err != nil {
		t.Fatalf("cam-7 cannot connect after release: %v", err)
	}
	// An unknown client: the broker's refusal is the error.
	res, err = c.Execute(ctx, act("quarantine_client", "nobody"))
	if err == nil || res.Acknowledged.IsZero() {
		t.Fatalf("quarantine of an unknown client: %+v %v", res, err)
	}
	t.Log(err)
}

func TestQuarantineRole(t *testing.T) {
	url := broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	watcher, err := client(t, url, "watcher", "watchpw", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 16)
	watcher.Subscribe("vigil/#", 1, func(_ paho.Client, m paho.Message) { got <- m.Topic() + " " + string(m.Payload()) }).Wait()
	watcher.Subscribe("devices/#", 1, func(_ paho.Client, m paho.Message) { got <- m.Topic() + " " + string(m.Payload()) }).Wait()

	c, _ := mqtt.New(mqtt.Options{Broker: url, Username: "admin", Password: "adminpw", Mode: mqtt.ModeRole})
	defer c.Close()
	if _, err := c.Execute(ctx, act("quarantine_client", "cam-7")); err != nil {
		t.Fatal(err)
	}
	// The quarantined device can still log in, but only its status topic goes through.
	cam, err := client(t, url, "cam-7", "campw", nil)
	if err != nil {
		t.Fatalf("cam-7 cannot connect in the quarantine role: %v", err)
	}
	cam.Publish("devices/cam-7/telemetry", 1, false, "blocked").Wait()
	cam.Publish("vigil/quarantine/cam-7/status", 1, false, "alive").Wait()
	select {
	case m := <-got:
		if m != "vigil/quarantine/cam-7/status alive" {
			t.Fatalf("the watcher got %q: a quarantined client published outside its status topic", m)
		}
	case <-ctx.Done():
		t.Fatal("the status message did not arrive")
	}
	if _, err := c.Execute(ctx, act("release_client", "cam-7")); err != nil {
		t.Fatal(err)
	}
	cam2, err := client(t, url, "cam-7", "campw", nil)
	if err != nil {
		t.Fatal(err)
	}
	cam2.Publish("devices/cam-7/telemetry", 1, false, "free").Wait()
	select {
	case m := <-got:
		if m != "devices/cam-7/telemetry free" {
			t.Fatalf("after release the watcher got %q", m)
		}
	case <-ctx.Done():
		t.Fatal("after release the telemetry did not arrive")
	}
}
