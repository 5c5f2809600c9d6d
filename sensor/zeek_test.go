package sensor

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	vigil "github.com/vigil-iot/vigil"
)

// zeekLog reads a Zeek ASCII log into rows keyed by field name.
func zeekLog(t *testing.T, path string) []map[string]string {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var fields []string
	var rows []map[string]string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "#fields\t"); ok {
			fields = strings.Split(rest, "\t")
			continue
		}
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		vals := strings.Split(line, "\t")
		row := map[string]string{}
		for i, f := range fields {
			if i < len(vals) {
				row[f] = vals[i]
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// onConn reports whether ev belongs to the Zeek row's connection, sent by
// the originator when fromOrig.
func onConn(ev *vigil.Event, row map[string]string, fromOrig bool) bool {
	if ev.Network == nil {
		return false
	}
	oh, op, rh, rp := row["id.orig_h"], row["id.orig_p"], row["id.resp_h"], row["id.resp_p"]
	if !fromOrig {
		oh, op, rh, rp = rh, rp, oh, op
	}
	return ev.Network.SrcIP.String() == oh && strconv.Itoa(int(ev.Network.SrcPort)) == op &&
		ev.Network.DstIP.String() == rh && strconv.Itoa(int(ev.Network.DstPort)) == rp
}

func find(evs []vigil.Event, action string, pred func(*vigil.Event) bool) *vigil.Event {
	for i := range evs {
		if evs[i].Kind == "mqtt" && evs[i].Action == action && pred(&evs[i]) {
			return &evs[i]
		}
	}
	return nil
}

// TestZeekMQTT compares Vigil's events on Zeek's Traces/mqtt.pcap with
// Zeek's baseline mqtt_connect, mqtt_publish and mqtt_subscribe logs.
func TestZeekMQTT(t *testing.T) {
	root := corpusDir(t, "pcap/zeek")
	evs, _ := runPcap(t, Config{}, filepath.Join(root, "Traces", "mqtt.pcap"))
	base := filepath.Join(root, "Baseline", "scripts.base.protocols.mqtt.mqtt")
	versions := map[string]float64{"3.1": 3, "3.1.1": 4, "5.0": 5}
	qos := map[string]float64{"at most once": 0, "at least once": 1, "exactly once": 2}

	rows := zeekLog(t, filepath.Join(base, "mqtt_connect.log"))
	for _, row := range rows {
		ev := find(evs, "connect", func(e *vigil.Event) bool { return onConn(e, row, true) })
		if ev == nil {
			t.Errorf("connect of %s:%s: no event", row["id.orig_h"], row["id.orig_p"])
			continue
		}
		f := ev.Fields
		if f["mqtt.protocol_name"] != row["proto_name"] || f["mqtt.protocol_version"] != versions[row["proto_version"]] || f["mqtt.client_id"] != row["client_id"] {
			t.Errorf("connect %s: got %v %v %v, zeek %v", row["id.orig_p"], f["mqtt.protocol_name"], f["mqtt.protocol_version"], f["mqtt.client_id"], row)
		}
		if _, has := f["mqtt.will.topic"]; has != (row["will_topic"] != "-") {
			t.Errorf("connect %s: will topic %v, zeek %q", row["id.orig_p"], f["mqtt.will.topic"], row["will_topic"])
		}
		ack := find(evs, "connack", func(e *vigil.Event) bool { return onConn(e, row, false) })
		if ack == nil || (ack.Fields["mqtt.reason_code"] == 0.0) != (row["connect_status"] == "Connection Accepted") {
			t.Errorf("connack %s: %v, zeek %q", row["id.orig_p"], ack, row["connect_status"])
		}
	}
	n := len(rows)

	rows = zeekLog(t, filepath.Join(base, "mqtt_publish.log"))
	used := map[*vigil.Event]bool{}
	for _, row := range rows {
		plen, _ := strconv.Atoi(row["payload_len"])
		ev := find(evs, "publish", func(e *vigil.Event) bool {
			f := e.Fields
			return !used[e] && onConn(e, row, row["from_client"] == "T") &&
				f["mqtt.retain"] == (row["retain"] == "T") && f["mqtt.qos"] == qos[row["qos"]] &&
				f["mqtt.topic"] == row["topic"] && f["mqtt.payload"] == row["payload"] &&
				f["mqtt.payload_size"] == float64(plen)
		})
		if ev == nil {
			t.Errorf("publish %v: no matching event", row)
			continue
		}
		used[ev] = true
	}
	n += len(rows)

	rows = zeekLog(t, filepath.Join(base, "mqtt_subscribe.log"))
	for _, row := range rows {
		action := strings.ToLower(strings.TrimPrefix(row["action"], "MQTT::"))
		ev := find(evs, action, func(e *vigil.Event) bool {
			return onConn(e, row, true) && vigil.ValueString(e.Fields["mqtt.topics"]) == row["topics"] &&
				(action != "subscribe" || vigil.ValueString(e.Fields["mqtt.topics_qos"]) == row["qos_levels"])
		})
		if ev == nil {
			t.Errorf("%s %v: no matching event", action, row)
			continue
		}
		if row["ack"] == "T" {
			ack := find(evs, strings.Replace(action, "scribe", "ack", 1), func(e *vigil.Event) bool {
				return onConn(e, row, false) && e.Fields["mqtt.message_id"] == ev.Fields["mqtt.message_id"]
			})
			if ack == nil {
				t.Errorf("%s %v: no acknowledgement event", action, row)
			} else if action == "subscribe" && vigil.ValueString(ack.Fields["mqtt.reason_codes"]) != row["granted_qos_level"] {
				t.Errorf("suback: granted %v, zeek %q", ack.Fields["mqtt.reason_codes"], row["granted_qos_level"])
			}
		}
	}
	n += len(rows)
	t.Logf("%d zeek log rows compared", n)
}
