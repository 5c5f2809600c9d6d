package agent

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/ingest"
	"github.com/vigil-iot/vigil/wire"
)

// Source is the Source of every event made from an agent report.
const Source = "agent"

// Convert validates r and turns its valid parts into events, received at
// the given time. It returns the problems of the parts it dropped; when
// the envelope (version, device_id, time) is invalid it returns no events.
func Convert(r *wire.Report, received time.Time) ([]vigil.Event, []wire.Problem) {
	return ConvertWith(r, Options{Received: received})
}

// Options are the settings of ConvertWith.
type Options struct {
	// Received is when the report was received: every event gets it.
	Received time.Time
	// MaxFuture, when positive, is how far after Received a time may be
	// (clock skew): a report dated later is refused whole, a security
	// event dated later is dropped with a problem.
	MaxFuture time.Duration
}

// ConvertWith is Convert with options.
func ConvertWith(r *wire.Report, o Options) ([]vigil.Event, []wire.Problem) {
	received := o.Received
	valid, probs := r.Filter()
	if valid == nil {
		return nil, probs
	}
	var skip map[int]bool
	if o.MaxFuture > 0 {
		if err := ingest.CheckFuture(valid.Time, received, o.MaxFuture); err != nil {
			return nil, append(probs, wire.Problem{Path: "time", Message: err.Error(), Index: -1})
		}
		for i := range valid.Events {
			if err := ingest.CheckFuture(valid.Events[i].Time, received, o.MaxFuture); err != nil {
				if skip == nil {
					skip = map[int]bool{}
				}
				skip[i] = true
				probs = append(probs, wire.Problem{Path: "events[" + strconv.Itoa(i) + "].time", Message: err.Error(), Index: i})
			}
		}
	}
	c := converter{r: valid, received: received, seq: strconv.FormatUint(valid.Sequence, 10), skip: skip}
	n := len(valid.Events) + 2
	if valid.Network != nil {
		n += len(valid.Network.Listening)
	}
	c.out = make([]vigil.Event, 0, n)
	c.health()
	c.inventory()
	c.listeners()
	c.security()
	return c.out, probs
}

type converter struct {
	r        *wire.Report
	received time.Time
	seq      string
	out      []vigil.Event
	skip     map[int]bool // security events refused by ConvertWith
}

// event returns a new event of the report at time t.
func (c *converter) event(t time.Time, kind, idPart string, fields map[string]any) vigil.Event {
	return vigil.Event{
		ID:       ingest.DeriveID(t, c.r.DeviceID, c.r.Time.Format(time.RFC3339Nano), c.seq, idPart),
		Time:     t,
		Received: c.received,
		DeviceID: c.r.DeviceID,
		Source:   Source,
		Kind:     kind,
		Fields:   fields,
	}
}

func (c *converter) health() {
	h := c.r.Health
	var conns *wire.Connections
	if c.r.Network != nil {
		conns = c.r.Network.Connections
	}
	if h == nil && conns == nil {
		return
	}
	f := map[string]any{}
	if h != nil {
		f["host.cpu.pct"] = h.CPU
		f["host.memory.pct"] = h.Memory
		f["host.disk.pct"] = h.Disk
		if h.Temperature != nil {
			f["host.temperature"] = *h.Temperature
		}
		if h.Uptime > 0 {
			f["host.uptime"] = float64(h.Uptime)
		}
		for k, v := range h.Metrics {
			f["metric."+k] = v
		}
	}
	if conns != nil {
		f["host.network.connections"] = float64(conns.Count)
		f["host.network.distinct_remotes"] = float64(conns.DistinctRemotes)
		f["host.network.ingress.bytes"] = float64(conns.BytesIn)
		f["host.network.egress.bytes"] = float64(conns.BytesOut)
	}
	if v := c.r.Agent.Version; v != "" {
		f["agent.version"] = v
	}
	e := c.event(c.r.Time, vigil.KindHealth, "health", f)
	e.Category, e.Action = "host", "sample"
	c.out = append(c.out, e)
}

func (c *converter) inventory() {
	inv := c.r.Inventory
	var ifaces []wire.Interface
	if c.r.Network != nil {
		ifaces = c.r.Network.Interfaces
	}
	if inv == nil && len(ifaces) == 0 {
		return
	}
	f := map[string]any{}
	set := func(k, v string) {
		if v != "" {
			f[k] = v
		}
	}
	if inv != nil {
		set("os.name", inv.OS.Name)
		set("os.version", inv.OS.Version)
		set("os.kernel", inv.OS.Kernel)
		set("device.firmware.version", inv.Firmware.Version)
		set("device.vendor", inv.Firmware.Vendor)
		set("device.model", inv.Firmware.Model)
		set("device.class", inv.Class)
		comps := make([]vigil.Component, len(inv.Software))
		for i, s := range inv.Software {
			comps[i] = vigil.Component{Name: s.Name, Version: s.Version, Type: s.Type, Source: s.Source, PURL: s.PURL, CPE: s.CPE}
		}
		f["software"] = mustJSON(comps)
		f["software.count"] = float64(len(comps))
	}
	if len(ifaces) > 0 {
		ids := make([]vigil.NetIdentity, len(ifaces))
		var ips, macs []string
		for i, x := range ifaces {
			ids[i] = vigil.NetIdentity{Interface: x.Name, MAC: strings.ToLower(x.MAC), Addresses: x.Addresses}
			if x.MAC != "" {
				macs = append(macs, strings.ToLower(x.MAC))
			}
			for _, a := range x.Addresses {
				if p, err := netip.ParsePrefix(a); err == nil {
					ips = append(ips, p.Addr().String())
				} else if ip, err := netip.ParseAddr(a); err == nil {
					ips = append(ips, ip.String())
				}
			}
		}
		f["interfaces"] = mustJSON(ids)
		if len(ips) > 0 {
			f["host.ip"] = ips
		}
		if len(macs) > 0 {
			f["host.mac"] = macs
		}
	}
	if v := c.r.Agent.Version; v != "" {
		f["agent.version"] = v
	}
	e := c.event(c.r.Time, vigil.KindInventory, "inventory", f)
	e.Category, e.Action = "host", "inventory"
	c.out = append(c.out, e)
}

func (c *converter) listeners() {
	if c.r.Network == nil {
		return
	}
	for _, l := range c.r.Network.Listening {
		proto := strings.TrimSuffix(strings.ToLower(l.Proto), "6")
		f := map[string]any{}
		if l.Process != "" {
			f["process.name"] = l.Process
		}
		if l.PID > 0 {
			f["process.pid"] = float64(l.PID)
		}
		if len(f) == 0 {
			f = nil
		}
		e := c.event(c.r.Time, vigil.KindNetwork, "listen/"+proto+"/"+l.Addr+"/"+strconv.Itoa(int(l.Port)), f)
		e.Category, e.Action, e.Outcome = "network", "listen", vigil.OutcomeSuccess
		e.Network = &vigil.Network{Transport: proto, DstPort: l.Port}
		if a, err := netip.ParseAddr(l.Addr); err == nil {
			e.Network.DstIP = a.Unmap()
		}
		c.out = append(c.out, e)
	}
}

func (c *converter) security() {
	for i, s := range c.r.Events {
		if c.skip[i] {
			continue
		}
		var f map[string]any
		if len(s.Fields) > 0 || s.ID != "" {
			f = make(map[string]any, len(s.Fields)+1)
			for k, v := range s.Fields {
				f[k] = v
			}
		}
		var id string
		if s.ID != "" {
			f["agent.event_id"] = s.ID
			id = ingest.DeriveID(s.Time, c.r.DeviceID, "id", s.ID)
		} else {
			id = ingest.DeriveID(s.Time, c.r.DeviceID, c.r.Time.Format(time.RFC3339Nano), c.seq, "event", strconv.Itoa(i))
		}
		sev, _ := vigil.ParseSeverity(s.Severity) // validated by Filter
		if s.Severity == "" {
			sev = 0
		}
		e := vigil.Event{
			ID:       id,
			Time:     s.Time,
			Received: c.received,
			DeviceID: c.r.DeviceID,
			Source:   Source,
			Kind:     s.Kind,
			Category: s.Category,
			Action:   s.Action,
			Outcome:  s.Outcome,
			Severity: sev,
			Fields:   f,
		}
		ingest.LiftNetwork(&e)
		c.out = append(c.out, e)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("agent: cannot encode %T: %v", v, err)) // plain structs of strings: cannot fail
	}
	return string(b)
}

// DeviceFromInventory rebuilds the inventory part of a device from an
// inventory event: identity, class, vendor, model, firmware, OS and kernel,
// software and network identities, and LastSeen (the event's time). Fields
// the event lacks are left empty; State and FirstSeen are the inventory
// stage's. It accepts the event as Convert made it and as it comes back
// from JSON (lists as []any).
func DeviceFromInventory(e *vigil.Event) (vigil.Device, error) {
	if e.Kind != vigil.KindInventory {
		return vigil.Device{}, vigil.Errorf(vigil.EINVALID, "event %s is of kind %q, not inventory", e.ID, e.Kind)
	}
	str := func(k string) string {
		s, _ := e.Fields[k].(string)
		return s
	}
	d := vigil.Device{
		ID:       e.DeviceID,
		Class:    str("device.class"),
		Vendor:   str("device.vendor"),
		Model:    str("device.model"),
		Firmware: str("device.firmware.version"),
		OS:       strings.TrimSpace(str("os.name") + " " + str("os.version")),
		Kernel:   str("os.kernel"),
		LastSeen: e.Time,
	}
	if s := str("software"); s != "" {
		if err := json.Unmarshal([]byte(s), &d.Software); err != nil {
			return d, vigil.Errorf(vigil.EINVALID, "event %s: software: cannot decode: %v", e.ID, err)
		}
	}
	if s := str("interfaces"); s != "" {
		if err := json.Unmarshal([]byte(s), &d.Network); err != nil {
			return d, vigil.Errorf(vigil.EINVALID, "event %s: interfaces: cannot decode: %v", e.ID, err)
		}
	}
	return d, nil
}
