package baseline

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

// novelties returns "rule value" for each novelty alert.
func novelties(alerts []vigil.Alert) []string {
	var out []string
	for _, a := range alerts {
		if strings.HasPrefix(a.RuleID, "baseline.new_") {
			out = append(out, a.RuleID+" "+a.Fields["baseline.observed"].(string))
		}
	}
	return out
}

// TestProtocolFeatures checks the MQTT QoS, AMQP and DDS (RTPS) families:
// an hour of a client's usual traffic, learned, raises nothing; then each
// new QoS level (one novelty alert per family a window: the second
// in the next window), AMQP exchange/routing key, queue, 1.0 address and DDS
// topic raises one novelty naming it, and the AMQP broker's access refusal
// counts as a failed authentication for the refused client. Lists come as
// JSON decodes them ([]any), as on the bus and in vigil detect.
func TestProtocolFeatures(t *testing.T) {
	f := &fleet{d: New(Options{Learn: time.Hour, Window: 10 * time.Second})}
	usual := func(at time.Duration) {
		f.send(sensorEv(at, "mqtt", "publish", "10.0.5.21", "10.0.5.10", 1883, map[string]any{"mqtt.topic": "plant/t", "mqtt.qos": 0.0, "mqtt.payload_size": 10.0}))
		f.send(sensorEv(at, "mqtt", "subscribe", "10.0.5.21", "10.0.5.10", 1883, map[string]any{"mqtt.topics": []any{"plant/cmd"}, "mqtt.topics_qos": []any{"1"}}))
		f.send(sensorEv(at, "amqp", "basic.publish", "10.0.5.22", "10.0.5.11", 5672, map[string]any{"amqp.exchange": "telemetry", "amqp.routing_key": "line1.temp", "amqp.body_size": 40.0}))
		f.send(sensorEv(at, "amqp", "basic.consume", "10.0.5.22", "10.0.5.11", 5672, map[string]any{"amqp.queue": "commands"}))
		f.send(sensorEv(at, "amqp", "attach", "10.0.5.23", "10.0.5.11", 5672, map[string]any{"amqp.role": "sender", "amqp.address": "/topic/plant"}))
		f.send(sensorEv(at, "rtps", "publication", "10.0.5.24", "239.255.0.1", 7400, map[string]any{"rtps.topic_name": "rt/joint_states", "rtps.type_name": "sensor_msgs::JointState"}))
		f.send(sensorEv(at, "rtps", "subscription", "10.0.5.24", "239.255.0.1", 7400, map[string]any{"rtps.topic_name": "rt/cmd_vel", "rtps.type_name": "geometry_msgs::Twist"}))
	}
	for s := 0; s < 3600; s += 10 {
		usual(time.Duration(s) * time.Second)
	}
	f.alerts = nil
	for s := 3600; s < 3900; s += 10 {
		usual(time.Duration(s) * time.Second)
	}
	if len(f.alerts) != 0 {
		t.Fatalf("usual traffic after learning raised %v", ruleIDs(f.alerts))
	}
	at := 3900 * time.Second
	f.send(sensorEv(at, "mqtt", "publish", "10.0.5.21", "10.0.5.10", 1883, map[string]any{"mqtt.topic": "plant/t", "mqtt.qos": 2.0, "mqtt.payload_size": 10.0}))
	f.send(sensorEv(at+20*time.Second, "mqtt", "subscribe", "10.0.5.21", "10.0.5.10", 1883, map[string]any{"mqtt.topics": []any{"plant/cmd"}, "mqtt.topics_qos": []any{"2"}}))
	f.send(sensorEv(at, "amqp", "basic.publish", "10.0.5.22", "10.0.5.11", 5672, map[string]any{"amqp.exchange": "telemetry", "amqp.routing_key": "line1.valve.set"}))
	f.send(sensorEv(at, "amqp", "queue.bind", "10.0.5.22", "10.0.5.11", 5672, map[string]any{"amqp.queue": "q1", "amqp.exchange": "amq.topic", "amqp.routing_key": "#"}))
	f.send(sensorEv(at, "amqp", "attach", "10.0.5.23", "10.0.5.11", 5672, map[string]any{"amqp.role": "receiver", "amqp.address": "/queue/secrets"}))
	f.send(sensorEv(at, "rtps", "publication", "10.0.5.24", "239.255.0.1", 7400, map[string]any{"rtps.topic_name": "rt/cmd_vel", "rtps.type_name": "geometry_msgs::Twist"}))
	got := novelties(f.alerts)
	want := []string{
		"baseline.new_mqtt_qos publish qos 2",
		"baseline.new_mqtt_qos subscribe qos 2",
		"baseline.new_amqp_publish telemetry line1.valve.set",
		"baseline.new_amqp_consume q1 amq.topic #",
		"baseline.new_amqp_consume /queue/secrets",
		"baseline.new_dds_topic_publish rt/cmd_vel (geometry_msgs::Twist)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("novelties:\n got %q\nwant %q", got, want)
	}

	// An AMQP broker refusing logins: the guessing client's failed
	// authentications, judged against its cohort (it is new).
	f.alerts = nil
	for i := 0; i < 20; i++ {
		f.send(sensorEv(at+30*time.Second+time.Duration(i)*100*time.Millisecond, "amqp", "connection.close", "10.0.5.11", "10.0.5.65", 40000,
			map[string]any{"amqp.reply_code": 403.0, "amqp.auth_failure": true}))
	}
	if a := firstAtLeast(f.alerts, "baseline.rate_failed_auths", vigil.SeverityMedium); a == nil || a.Fields["baseline.entity"] != "ip:10.0.5.65" && a.Fields["baseline.peer"] != "10.0.5.65" {
		t.Errorf("no medium failed-authentication alert naming the client: %v", ruleIDs(f.alerts))
	}
}
