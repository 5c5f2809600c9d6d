package sim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// BulkIDPrefix starts every event id of BulkBatch; 15 hex digits follow,
// so a load generator can rewrite ids in place to reuse a batch.
const BulkIDPrefix = "b"

// BulkTimeLayout is the fixed-width time format of BulkBatch events, so a
// load generator can rewrite times in place too.
const BulkTimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// BulkBatch returns n NDJSON lines of normalized events (the
// POST /api/v1/events format) spread over the fleet's devices, each around
// 400 to 500 bytes: logins, process starts, connections. Every probeEvery-th
// event (0: none) is a telnet listener on port 23, which the default
// threshold rules alert on, so that the load generator can measure
// ingest→alert latency under load. idBase makes event ids unique across
// batches.
func (f *Fleet) BulkBatch(n int, now time.Time, probeEvery int, idBase uint64) []byte {
	buf := make([]byte, 0, n*520)
	for i := range n {
		d := f.Devices[f.rng.IntN(len(f.Devices))]
		t := now.Add(time.Duration(i) * time.Microsecond).UTC()
		id := BulkIDPrefix + fmt.Sprintf("%015x", idBase+uint64(i))
		var ev map[string]any
		switch {
		case probeEvery > 0 && (int(idBase)+i)%probeEvery == 0:
			ev = map[string]any{
				"kind": "network", "category": "network", "action": "listen", "outcome": "success",
				"network": map[string]any{"transport": "tcp", "dst_ip": d.IP.String(), "dst_port": 23},
				"fields":  map[string]any{"process.name": "telnetd", "process.pid": 4242.0, "host.name": d.ID},
			}
		case i%3 == 0:
			ev = map[string]any{
				"kind": "auth", "category": "authentication", "action": "login", "outcome": "success",
				"network": map[string]any{"transport": "tcp", "src_ip": "10.9.0." + strconv.Itoa(1+f.rng.IntN(200)), "src_port": 40000 + f.rng.IntN(20000), "dst_ip": d.IP.String(), "dst_port": 22},
				"fields": map[string]any{
					"user.name": "maint", "service.name": "dropbear", "host.name": d.ID,
					"user_agent.original": "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6",
					"event.reason":        "password accepted for maint from trusted engineering subnet",
				},
			}
		case i%3 == 1:
			ev = map[string]any{
				"kind": "process", "category": "process", "action": "exec", "outcome": "success",
				"fields": map[string]any{
					"process.executable":   "/usr/sbin/ntpd",
					"process.command_line": "/usr/sbin/ntpd -n -q -p 0.pool.ntp.org -p 1.pool.ntp.org",
					"process.pid":          float64(1000 + f.rng.IntN(30000)),
					"process.parent.name":  "crond", "user.name": "root", "host.name": d.ID,
					"process.working_directory": "/var/run",
				},
			}
		default:
			ev = map[string]any{
				"kind": "network", "category": "network", "action": "connect", "outcome": "success",
				"network": map[string]any{"transport": "tcp", "src_ip": d.IP.String(), "src_port": 30000 + f.rng.IntN(30000), "dst_ip": "198.51.100." + strconv.Itoa(1+f.rng.IntN(250)), "dst_port": 8883},
				"fields": map[string]any{
					"process.name": "mqtt-bridge", "network.bytes": float64(f.rng.IntN(100000)),
					"destination.domain": "telemetry.example.net", "host.name": d.ID,
					"tls.version": "1.3", "tls.client.server_name": "telemetry.example.net",
				},
			}
		}
		ev["id"] = id
		ev["time"] = t.Format(BulkTimeLayout)
		ev["device_id"] = d.ID
		ev["source"] = "bench"
		b, _ := json.Marshal(ev)
		buf = append(buf, b...)
		buf = append(buf, '\n')
	}
	return buf
}
