package main

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
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vigil-iot/vigil/node"
	"github.com/vigil-iot/vigil/sim"
)

// dynsecPlugins are where Debian, Ubuntu, Alpine and Fedora put Mosquitto's
// dynamic-security plugin.
var dynsecPlugins = []string{
	"/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
	"/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
	"/usr/lib/mosquitto_dynamic_security.so",
	"/usr/lib64/mosquitto_dynamic_security.so",
	"/usr/local/lib/mosquitto_dynamic_security.so",
}

// demoBroker is a Mosquitto with the dynamic-security plugin that the demo
// runs on a free loopback port of its own: an admin account for Vigil's
// broker quarantine, and the MQTT account of a device the second bot
// abuses.
type demoBroker struct {
	URL                  string
	admin, adminPassword string
	User, Password       string
	cmd                  *exec.Cmd
}

// startDemoBroker starts the broker when mosquitto and the plugin are
// installed; otherwise (or when it does not come up) it returns nil and
// the demo runs without broker quarantine.
func startDemoBroker(dir, user string) *demoBroker {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, e := os.Stat(p); e == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		return nil
	}
	plugin := ""
	for _, p := range dynsecPlugins {
		if _, err := os.Stat(p); plugin == "" && err == nil {
			plugin = p
		}
	}
	if plugin == "" {
		return nil
	}
	dir = filepath.Join(dir, "mosquitto")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil
	}
	b := &demoBroker{admin: "vigil-admin", adminPassword: randomSecret(), User: user, Password: randomSecret()}
	allow := func(typ, topic string) map[string]any {
		return map[string]any{"acltype": typ, "topic": topic, "allow": true}
	}
	cfg := map[string]any{
		"defaultACLAccess": map[string]bool{"publishClientSend": false, "publishClientReceive": true, "subscribe": false, "unsubscribe": true},
		"clients":          []map[string]any{dynsecClient(b.admin, b.adminPassword, "admin"), dynsecClient(user, b.Password, "device")},
		"groups":           []any{},
		"roles": []map[string]any{
			{"rolename": "admin", "acls": []any{
				allow("publishClientSend", "$CONTROL/dynamic-security/#"),
				allow("publishClientReceive", "$CONTROL/dynamic-security/#"),
				allow("subscribePattern", "$CONTROL/dynamic-security/#"),
			}},
			{"rolename": "device", "acls": []any{allow("publishClientSend", "devices/#"), allow("subscribePattern", "devices/#"),
				allow("publishClientSend", "vigil/#")}},
		},
	}
	js, _ := json.MarshalIndent(cfg, "", "  ")
	dynsec := filepath.Join(dir, "dynsec.json")
	if err := os.WriteFile(dynsec, js, 0o600); err != nil {
		return nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	conf := fmt.Sprintf("per_listener_settings false\nallow_anonymous false\nlistener %s 127.0.0.1\nplugin %s\nplugin_opt_config_file %s\npersistence false\nlog_dest file %s\n",
		port, plugin, dynsec, filepath.Join(dir, "mosquitto.log"))
	if os.Getuid() == 0 {
		conf += "user root\n" // else it drops to "mosquitto", which cannot read the private dir
	}
	confFile := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		return nil
	}
	b.cmd = exec.Command(bin, "-c", confFile)
	if err := b.cmd.Start(); err != nil {
		return nil
	}
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			b.stop()
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	b.URL = "tcp://" + addr
	return b
}

// stop ends the broker (at most 3 s).
func (b *demoBroker) stop() {
	_ = b.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		_ = b.cmd.Process.Kill()
		<-done
	}
}

// config is the response.mqtt configuration on this broker.
func (b *demoBroker) config() *node.MQTTConfig {
	return &node.MQTTConfig{Broker: b.URL, Username: b.admin, Password: b.adminPassword}
}

func dynsecClient(user, password, role string) map[string]any {
	salt := make([]byte, 12)
	_, _ = rand.Read(salt)
	h, _ := pbkdf2.Key(sha512.New, password, salt, 101, 64)
	return map[string]any{"username": user, "password": base64.StdEncoding.EncodeToString(h),
		"salt": base64.StdEncoding.EncodeToString(salt), "iterations": 101, "roles": []map[string]string{{"rolename": role}}}
}

func randomSecret() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// mqttAttack plays a second bot: it has the MQTT password of a device that
// runs no agent (dev), logs in to the broker with it and publishes into
// another device's command topic. A network sensor reports the publish
// (the event is posted as the sensor would); Vigil's quarantine playbook
// then disables the account on the broker, which disconnects the bot.
func (d *demoRun) mqttAttack(ctx context.Context, b *demoBroker, dev *sim.Device, at time.Duration) {
	if b == nil {
		return
	}
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Until(d.start.Add(at))):
	}
	lost := make(chan struct{})
	o := paho.NewClientOptions().AddBroker(b.URL).SetClientID(b.User).SetUsername(b.User).SetPassword(b.Password).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
		SetConnectionLostHandler(func(paho.Client, error) { close(lost) })
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		d.printf("attack   (the bot could not log in to the demo broker: %v)\n", tok.Error())
		return
	}
	defer c.Disconnect(0)
	topic := "devices/lock-0007/cmd"
	c.Publish(topic, 1, false, `{"unlock":true}`).WaitTimeout(5 * time.Second)
	d.printf("attack   %s (no agent; a second bot has its MQTT password): logs in to the broker as %q and publishes %s {\"unlock\":true}\n", dev.ID, b.User, topic)

	d.mu.Lock()
	now, id, addr := time.Now().UTC(), dev.ID, dev.IP.String()
	d.mu.Unlock()
	ev, _ := json.Marshal(map[string]any{
		"time": now.Format(time.RFC3339Nano), "device_id": id, "source": "sensor", "kind": "mqtt", "action": "publish",
		"network": map[string]any{"transport": "tcp", "src_ip": addr, "src_port": 50200, "dst_ip": "127.0.0.1", "dst_port": 1883},
		"fields": map[string]any{"mqtt.type": "publish", "mqtt.topic": topic, "mqtt.client_id": b.User, "mqtt.username": b.User,
			"mqtt.qos": 1, "mqtt.payload": `{"unlock":true}`, "mqtt.payload_size": 15},
	})
	// The bot's publish is what the demo's enrolled sensor sees on the
	// wire: evidence from a sensor's certificate, which automatic
	// containment trusts.
	sensor := d.sensor
	if sensor == nil {
		d.printf("attack   (no demo sensor to see the publish)\n")
		return
	}
	if _, err := sensor.PostEvents(ctx, append(ev, '\n')); err != nil {
		d.printf("attack   (cannot post the sensor's event: %v)\n", err)
		return
	}
	select {
	case <-ctx.Done():
		return
	case <-lost:
	}
	d.printNew(ctx, d.admin) // the detection and the quarantine first
	d.printf("BROKER   %q disconnected by the broker (dynamic security: account disabled)\n", b.User)
	c2 := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL).SetClientID(b.User + "-retry").SetUsername(b.User).
		SetPassword(b.Password).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	if tok := c2.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() != nil {
		d.printf("BROKER   the bot logs in again as %q: refused (%v)\n", b.User, tok.Error())
	} else {
		c2.Disconnect(0)
	}
}
