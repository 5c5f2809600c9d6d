package sensor

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	vigil "github.com/vigil-iot/vigil"
)

// Suricata's MQTT rules match transactions: a CONNECT with its CONNACK, a
// PUBLISH with its acknowledgements, a (UN)SUBSCRIBE with its (UN)SUBACK,
// any other message alone. mqttTxs groups Vigil's per-packet events the
// same way (Suricata's MQTTState.handle_msg), per flow.
func mqttTxs(evs []vigil.Event) [][]*vigil.Event {
	type open struct {
		tx  int
		pid float64
	}
	var txs [][]*vigil.Event
	pending := map[string][]open{} // flow id -> open transactions by packet id
	const connectID = -1
	for i := range evs {
		e := &evs[i]
		if e.Kind != "mqtt" || e.Action == "anomaly" {
			continue
		}
		fl := vigil.ValueString(e.Fields["flow.id"])
		id, hasID := e.Fields["mqtt.message_id"].(float64)
		qos, _ := e.Fields["mqtt.qos"].(float64)
		find := func(pid float64) int {
			for j, o := range pending[fl] {
				if o.pid == pid {
					return j
				}
			}
			return -1
		}
		attach := func(pid float64, complete bool) bool {
			j := find(pid)
			if j < 0 {
				return false
			}
			tx := pending[fl][j].tx
			txs[tx] = append(txs[tx], e)
			if complete {
				pending[fl] = slices.Delete(pending[fl], j, j+1)
			}
			return true
		}
		newTx := func(pid float64, keep bool) {
			txs = append(txs, []*vigil.Event{e})
			if keep {
				pending[fl] = append(pending[fl], open{len(txs) - 1, pid})
			}
		}
		switch e.Action {
		case "connect":
			newTx(connectID, true)
		case "connack":
			if !attach(connectID, true) {
				newTx(0, false)
			}
		case "publish", "subscribe", "unsubscribe":
			newTx(id, hasID && qos > 0 && qos < 3)
		case "pubrec", "pubrel":
			if !attach(id, false) {
				newTx(0, false)
			}
		case "puback", "pubcomp", "suback", "unsuback":
			if !attach(id, true) {
				newTx(0, false)
			}
		default:
			newTx(0, false)
		}
	}
	return txs
}

// suricataRule is the part of a Suricata MQTT rule Vigil can evaluate.
type suricataRule struct {
	sid, msg string
	match    func(tx []*vigil.Event) bool
	skip     string // why the rule cannot be evaluated
}

var optRe = regexp.MustCompile(`\s*([a-z_.\-]+)\s*(?::\s*((?:[^;\\]|\\.)*))?;`)

// parseRule turns one rule line into a predicate over a transaction.
func parseRule(line string) suricataRule {
	var r suricataRule
	open := strings.IndexByte(line, '(')
	if open < 0 || !strings.HasPrefix(line, "alert mqtt") {
		r.skip = "not an mqtt alert rule"
		return r
	}
	for _, m := range optRe.FindAllStringSubmatch(line[open+1:], -1) {
		switch m[1] {
		case "sid":
			r.sid = strings.TrimSpace(m[2])
		case "msg":
			r.msg = strings.Trim(strings.TrimSpace(m[2]), `"`)
		}
	}
	var preds []func(tx []*vigil.Event) bool
	sticky := ""
	any := func(f func(e *vigil.Event) bool) func(tx []*vigil.Event) bool {
		return func(tx []*vigil.Event) bool {
			for _, e := range tx {
				if f(e) {
					return true
				}
			}
			return false
		}
	}
	for _, m := range optRe.FindAllStringSubmatch(line[open+1:], -1) {
		key, val := m[1], strings.Trim(strings.TrimSpace(m[2]), `"`)
		switch key {
		case "msg", "sid", "rev", "fast_pattern", "classtype":
		case "mqtt.type":
			typ, idx, hasIdx := strings.Cut(val, ",")
			typ = strings.ToLower(strings.TrimSpace(typ))
			if hasIdx {
				n, _ := strconv.Atoi(strings.TrimSpace(idx))
				preds = append(preds, func(tx []*vigil.Event) bool { return n < len(tx) && tx[n].Action == typ })
			} else {
				preds = append(preds, any(func(e *vigil.Event) bool { return e.Action == typ }))
			}
		case "mqtt.qos", "mqtt.protocol_version", "mqtt.reason_code":
			field := map[string]string{"mqtt.qos": "mqtt.qos", "mqtt.protocol_version": "mqtt.protocol_version", "mqtt.reason_code": "mqtt.reason_code"}[key]
			n, err := strconv.ParseFloat(val, 64)
			if err != nil {
				r.skip = key + " " + val
				return r
			}
			preds = append(preds, any(func(e *vigil.Event) bool {
				if key == "mqtt.reason_code" && (e.Action == "suback" || e.Action == "unsuback") {
					return slices.Contains(strings.Split(vigil.ValueString(e.Fields["mqtt.reason_codes"]), ","), val)
				}
				return e.Fields[field] == n
			}))
		case "mqtt.flags", "mqtt.connect.flags":
			for _, fl := range strings.Split(val, ",") {
				fl = strings.TrimSpace(fl)
				neg := strings.HasPrefix(fl, "!")
				fl = strings.TrimPrefix(fl, "!")
				field := "mqtt." + fl
				if key == "mqtt.connect.flags" {
					field = "mqtt.flags." + fl
				}
				preds = append(preds, any(func(e *vigil.Event) bool {
					if key == "mqtt.connect.flags" && e.Action != "connect" {
						return false
					}
					return e.Fields[field] == !neg
				}))
			}
		case "mqtt.connect.username", "mqtt.connect.protocol_string", "mqtt.publish.topic",
			"mqtt.subscribe.topic", "mqtt.unsubscribe.topic", "mqtt.connect.clientid",
			"mqtt.connect.willtopic":
			sticky = key
		case "mqtt.connect.password":
			r.skip = "mqtt.connect.password: Vigil never keeps passwords"
			return r
		case "mqtt.publish.message", "mqtt.connect.willmessage":
			r.skip = key + ": Vigil keeps a text preview of payloads, not their bytes"
			return r
		case "content":
			if sticky == "" {
				r.skip = "content without an mqtt sticky buffer"
				return r
			}
			want, err := suricataContent(val)
			if err != nil {
				r.skip = err.Error()
				return r
			}
			fa := map[string][2]string{
				"mqtt.connect.username":        {"mqtt.username", "connect"},
				"mqtt.connect.protocol_string": {"mqtt.protocol_name", "connect"},
				"mqtt.connect.clientid":        {"mqtt.client_id", "connect"},
				"mqtt.connect.willtopic":       {"mqtt.will.topic", "connect"},
				"mqtt.publish.topic":           {"mqtt.topic", "publish"},
				"mqtt.subscribe.topic":         {"mqtt.topics", "subscribe"},
				"mqtt.unsubscribe.topic":       {"mqtt.topics", "unsubscribe"},
			}[sticky]
			field, action := fa[0], fa[1]
			preds = append(preds, any(func(e *vigil.Event) bool {
				if e.Action != action {
					return false
				}
				switch v := e.Fields[field].(type) {
				case string:
					return strings.Contains(v, want)
				case []string:
					for _, s := range v {
						if strings.Contains(s, want) {
							return true
						}
					}
				}
				return false
			}))
		case "frame":
			r.skip = "frame keyword: Suricata's stream framing, not a protocol field"
			return r
		case "app-layer-event":
			r.skip = "app-layer-event: compared as anomaly events instead"
			return r
		default:
			r.skip = "keyword " + key
			return r
		}
	}
	r.match = func(tx []*vigil.Event) bool {
		for _, p := range preds {
			if !p(tx) {
				return false
			}
		}
		return true
	}
	return r
}

// suricataContent decodes a content string with |hex| parts.
func suricataContent(s string) (string, error) {
	var out strings.Builder
	for {
		i := strings.IndexByte(s, '|')
		if i < 0 {
			out.WriteString(s)
			return out.String(), nil
		}
		out.WriteString(s[:i])
		j := strings.IndexByte(s[i+1:], '|')
		if j < 0 {
			return "", fmt.Errorf("content %q: unterminated hex", s)
		}
		b, err := hex.DecodeString(strings.ReplaceAll(s[i+1:i+1+j], " ", ""))
		if err != nil {
			return "", err
		}
		out.Write(b)
		s = s[i+2+j:]
	}
}

// TestSuricataVerifyMQTTRules evaluates the rules of each mqtt* case's
// test.rules over Vigil's events grouped into Suricata's transactions and
// compares the number of transactions each rule matches with the alert
// counts its test.yaml expects. Rules with keywords Vigil cannot evaluate
// (frames, app-layer-event, passwords, payload bytes) are listed, not
// compared.
func TestSuricataVerifyMQTTRules(t *testing.T) {
	root := corpusDir(t, "pcap/suricata-verify")
	dirs, _ := filepath.Glob(filepath.Join(root, "mqtt*"))
	compared := 0
	skipped := map[string]int{}
	for _, dir := range dirs {
		rb, err := os.ReadFile(filepath.Join(dir, "test.rules"))
		if err != nil {
			continue
		}
		rules := map[string]suricataRule{} // by sid and by msg
		for _, line := range strings.Split(string(rb), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || line[0] == '#' {
				continue
			}
			r := parseRule(line)
			rules["sid:"+r.sid] = r
			rules["msg:"+r.msg] = r
		}
		st, pcap := loadSuricataTest(t, dir)
		var txs [][]*vigil.Event
		loaded := false
		for i, ch := range st.Checks {
			if ch.Filter == nil {
				continue
			}
			m := ch.Filter.Match
			var key string
			if v, ok := m["alert.signature_id"]; ok {
				key = "sid:" + fmt.Sprint(v)
			} else if v, ok := m["alert.signature"]; ok {
				key = "msg:" + fmt.Sprint(v)
			} else {
				continue
			}
			if len(m) > 2 {
				skipped["alert check with other keys (frames, flows)"]++
				continue
			}
			r, ok := rules[key]
			if !ok || r.skip != "" {
				why := r.skip
				if !ok {
					why = "rule not in test.rules: Suricata's own mqtt-events.rules (app-layer events, compared as anomaly events)"
				}
				skipped[why]++
				continue
			}
			if !loaded {
				evs, _ := runPcap(t, Config{PayloadPreview: 1 << 20}, pcap)
				txs = mqttTxs(evs)
				loaded = true
			}
			n := 0
			for _, tx := range txs {
				if r.match(tx) {
					n++
				}
			}
			want := 1
			if ch.Filter.Count != nil {
				want = *ch.Filter.Count
			}
			if d, ok := disagreements[filepath.Base(dir)+"/"+key]; ok {
				skipped["principled disagreement: "+d.reason]++
				want = d.vigil.(int)
			}
			if n != want {
				t.Errorf("%s check %d (%s %q): %d transactions match, want %d", filepath.Base(dir), i, key, r.msg, n, want)
			}
			compared++
		}
	}
	t.Logf("%d alert checks compared", compared)
	for k, n := range skipped {
		t.Logf("not compared: %d × %s", n, k)
	}
}
