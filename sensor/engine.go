package sensor

import (
	"context"
	"time"

	vigil "github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/proto"
	"github.com/vigil-iot/vigil/proto/zigbee"
)

// engine turns packets into events: flows, reassembly, decoders. It is
// driven from one goroutine.
type engine struct {
	cfg    Config
	reg    *registry
	table  *flowTable
	stats  Stats
	p      packet
	c      proto.Context
	batch  []proto.Event
	pub    Publisher
	nd     *NDJSON       // pub, when it is NDJSON: encoded from batch directly
	lines  LinePublisher // pub, when it is one: given batch encoded
	buf    []byte        // batch encoded for lines
	err    error         // first publish error
	runCtx context.Context
	disc   *discovery // nil when discovery is off
	met    *metrics   // nil without a Registerer
	// filter drops packets before flows and decoders; nil keeps all.
	filter filter

	dot15d4 zigbee.Decoder

	// arena holds the fields of the events of batch, until it is
	// published.
	arena proto.FieldArena
	// pubBatch is batch made into vigil.Events for pub (not NDJSON).
	// When pub releases them (recycle), their Fields maps go back to
	// maps.
	pubBatch []vigil.Event
	recycle  bool
	maps     fieldMaps

	defrag        *defrag // nil when reassembly is off
	fragTruncated uint64  // fragments the capture cut short
}

var _ proto.Emitter = (*engine)(nil)

func newEngine(ctx context.Context, cfg Config, pub Publisher) *engine {
	e := &engine{
		cfg:    cfg,
		reg:    newRegistry(cfg.Protocols),
		table:  newFlowTable(cfg.MaxFlows),
		pub:    pub,
		runCtx: ctx,
		batch:  make([]proto.Event, 0, cfg.BatchSize),
		met:    newMetrics(cfg.Registerer),
	}
	if cfg.MaxIPDatagrams > 0 {
		e.defrag = newDefrag(cfg.MaxIPDatagrams, cfg.FragmentTimeout)
	}
	e.c.Arena = &e.arena
	e.nd, _ = pub.(*NDJSON)
	e.lines, _ = pub.(LinePublisher)
	if r, ok := pub.(Releaser); ok && r.ReleasesEvents() {
		e.recycle = true
	}
	if !cfg.DisableDiscovery {
		e.disc = newDiscovery(cfg.MaxDevices, cfg.OUI, &e.arena, func(ev proto.Event) {
			e.stats.Devices++
			e.Emit(ev)
		})
	}
	return e
}

// Emit implements proto.Emitter.
func (e *engine) Emit(ev proto.Event) {
	e.stats.Events++
	if ev.Action == "anomaly" {
		e.stats.Anomalies++
	}
	if e.disc != nil && ev.Kind == "zigbee" && ev.Action != "anomaly" {
		e.learnZigbee(&ev)
	}
	if e.disc != nil && ev.Network != nil {
		// Tie the event to the device that sent it, when it is local.
		if ev.DeviceID == "" {
			if dev := e.disc.byAddr(ev.Network.SrcIP); dev != nil {
				ev.DeviceID = dev.id
			}
		}
		if ev.Kind == "mqtt" && ev.Action == "connect" {
			if v, _ := ev.Fields.Get("mqtt.client_id"); v != nil {
				if id, ok := v.(string); ok {
					e.disc.clientID(ev.Network.SrcIP, id)
				}
			}
		}
	}
	e.batch = append(e.batch, ev)
}

// flush publishes the batch.
func (e *engine) flush() {
	if e.defrag != nil {
		e.stats.Reassembled = e.defrag.reassembled
		e.stats.FragsDropped = e.defrag.dropped + e.fragTruncated
	}
	e.met.sync(e.stats, len(e.table.m))
	if len(e.batch) == 0 {
		return
	}
	switch {
	case e.err != nil:
	case e.nd != nil:
		e.err = e.nd.write(e.batch)
	case e.lines != nil:
		if e.buf, e.err = appendLines(e.buf[:0], e.batch); e.err == nil {
			e.err = e.lines.PublishLines(e.runCtx, e.buf, len(e.batch))
		}
	case e.pub != nil:
		e.publish()
	}
	clear(e.batch)
	e.batch = e.batch[:0]
	e.arena.Reset()
}

// publish hands the batch to pub as vigil.Events, their Fields maps made
// from the events' fields.
func (e *engine) publish() {
	evs := e.pubBatch[:0]
	for i := range e.batch {
		ev := &e.batch[i]
		v := ev.Event
		if e.recycle {
			v.Fields = ev.Fields.Map(e.maps.Get(len(ev.Fields)))
		} else {
			v.Fields = ev.Fields.Map(nil)
		}
		evs = append(evs, v)
	}
	e.err = e.pub.PublishEvents(e.runCtx, evs)
	if e.recycle {
		for i := range evs {
			e.maps.Put(evs[i].Fields)
		}
	}
	clear(evs)
	e.pubBatch = evs[:0]
}

// ctx fills the decoder context for direction d of f.
func (e *engine) ctx(f *flow, d proto.Direction) {
	e.c.Time = f.end
	e.c.Flow = f.net
	e.c.Dir = d
	e.c.FlowID = f.id
	e.table.shared(f)
	e.c.Midstream = f.midstream
	e.c.Net = f.nets[d]
}

// packet processes one captured frame.
func (e *engine) packet(link int, data []byte, ts time.Time, wireLen int) {
	e.stats.Packets++
	e.stats.Bytes += uint64(wireLen)
	if frame, is154, ok := dot15d4Frame(link, data); is154 {
		if e.filter != nil {
			e.stats.Filtered++ // not IP: a filter never matches
			return
		}
		if !ok {
			e.stats.Undecoded++
			return
		}
		e.c = proto.Context{Time: ts, Arena: e.c.Arena}
		e.dot15d4.ParseDatagram(&e.c, frame, e)
		if len(e.batch) >= e.cfg.BatchSize {
			e.flush()
		}
		return
	}
	p := &e.p
	if !decodeLink(link, data, p) {
		e.stats.Undecoded++
		return
	}
	if p.fragment && e.defrag != nil && !e.reassemble(p, ts) {
		return // the datagram is not whole yet
	}
	if e.filter != nil && !e.filter(p) {
		e.stats.Filtered++
		return
	}
	if e.disc != nil {
		e.disc.observe(p.srcMAC, p.hasMAC, p.src, ts)
		if len(e.disc.dirty) > 0 {
			e.disc.announce(ts) // before the events that name the device
		}
	}
	if p.fragment && p.payload == nil && !p.transportInvalid && (p.proto == ipTCP || p.proto == ipUDP) {
		// A later IP fragment: no ports, so no flow to count it in (IP
		// fragments are not reassembled).
		e.stats.Fragments++
		return
	}
	k, fwd := keyOf(p)
	f := e.table.lookup(k)
	if f != nil && p.proto == ipTCP && p.flags&(tcpSYN|tcpACK) == tcpSYN && (f.closing || f.rst || f.decided) {
		// A new connection on the 5-tuple of one that carried data: the
		// old one ended without our seeing it.
		e.endFlow(f, "end", ts)
		f = nil
	}
	if f == nil {
		if p.proto == ipTCP && p.flags&tcpSYN == 0 && len(p.payload) == 0 {
			// A bare ACK, FIN or RST of a flow we do not know (or just
			// closed): count it, but do not start a flow on it.
			e.stats.Orphans++
			return
		}
		if len(e.table.m) >= e.cfg.MaxFlows {
			e.stats.FlowsEvicted++
			e.endFlow(e.table.tail, "evicted", ts)
		}
		f = e.table.newFlow(k, fwd, p, ts, e.reg.wellKnown)
		e.stats.Flows++
	} else {
		e.table.touch(f)
	}
	d := f.dir(fwd)
	f.pkts[d] += uint64(p.frags)
	f.bytes[d] += uint64(p.ipLen)
	if ts.After(f.end) {
		f.end = ts
	}
	f.flags[d] |= p.flags
	if p.fragment && p.payload == nil || p.transportInvalid {
		return
	}
	switch p.proto {
	case ipTCP:
		if !f.decided && len(p.payload) > 0 {
			e.decideTCP(f, d, p.payload)
		}
		e.tcpSegment(f, d, p)
		if p.flags&tcpRST != 0 {
			f.rst = true
		}
		if p.flags&tcpFIN != 0 {
			f.finSeen[d] = true
		}
		if f.rst || f.finSeen[0] && f.finSeen[1] {
			e.endFlow(f, "end", ts)
		}
	case ipUDP:
		if !f.decided {
			f.decided = true
			if pr := e.reg.udp[f.net.DstPort]; pr != nil {
				f.app = pr.Name
				f.dgram = pr.Datagram
				e.noteApp(f)
			} else {
				for _, pr := range e.reg.udpProbes {
					if pr.Probe(p.payload) {
						f.app = pr.Name
						f.dgram = pr.Datagram
						e.noteApp(f)
						break
					}
				}
			}
		}
		if f.dgram != nil {
			e.ctx(f, d)
			f.dgram.ParseDatagram(&e.c, p.payload, e)
		}
	}
	if e.cfg.FlowInterval > 0 && sub(ts, f.lastReport) >= e.cfg.FlowInterval && e.table.lookup(k) == f {
		f.lastReport = ts
		e.Emit(e.table.record(f, "periodic", ts, &e.arena))
	}
	e.expire(ts)
	if e.disc != nil && len(e.disc.dirty) > 0 {
		e.disc.announce(ts)
	}
	if len(e.batch) >= e.cfg.BatchSize {
		e.flush()
	}
}

// reassemble takes an IP fragment. When it completes its datagram, p
// becomes the whole datagram and reassemble returns true.
func (e *engine) reassemble(p *packet, ts time.Time) bool {
	e.stats.Fragments++
	if p.truncated {
		e.fragTruncated++
		return false
	}
	r := e.defrag.add(p, ts)
	if r.anomaly != "" {
		e.fragAnomaly(p, ts, r.anomaly, r.detail)
	}
	if !r.done {
		return false
	}
	src, dst, mac, hasMAC := p.src, p.dst, p.srcMAC, p.hasMAC
	next := p.fragNext
	*p = packet{src: src, dst: dst, srcMAC: mac, hasMAC: hasMAC, ipLen: r.ipLen, frags: r.frags}
	if src.Is6() {
		if !decodeIPv6Headers(next, r.payload, p, false) {
			e.stats.Undecoded++
			return false
		}
		return true
	}
	p.proto = next
	return decodeTransport(r.payload, p)
}

// fragAnomaly emits an IP-layer anomaly about the datagram of fragment p.
func (e *engine) fragAnomaly(p *packet, ts time.Time, name, detail string) {
	c := proto.Context{Time: ts, Arena: e.c.Arena,
		Flow: vigil.Network{Transport: transportName(p.fragNext), SrcIP: p.src, DstIP: p.dst}}
	ev := c.Anomaly("ip", name, detail)
	ev.Severity = vigil.SeverityMedium
	ev.Fields.SetStr("anomaly.layer", "decoder")
	ev.Fields.Set("ip.fragment_id", float64(p.fragID))
	if p.src.Is6() {
		ev.Fields.Set("ip.version", proto.Num(6))
	} else {
		ev.Fields.Set("ip.version", proto.Num(4))
	}
	e.Emit(ev)
}

// decideTCP picks the application protocol of a TCP flow from its
// server port, or by probing the first bytes the client sends.
func (e *engine) decideTCP(f *flow, d proto.Direction, payload []byte) {
	if pr := e.reg.tcp[f.net.DstPort]; pr != nil && pr.NewStream != nil {
		f.decided = true
		f.app = pr.Name
		f.stream = pr.NewStream()
		e.noteApp(f)
		return
	}
	if d != proto.ToServer {
		// The server speaks first: only protocols where it may.
		for _, pr := range e.reg.probes {
			if pr.ProbeServer && pr.Probe(payload) {
				f.decided = true
				f.app = pr.Name
				f.stream = pr.NewStream()
				e.noteApp(f)
				return
			}
		}
		return
	}
	f.decided = true
	for _, pr := range e.reg.probes {
		if pr.Probe(payload) {
			f.app = pr.Name
			f.stream = pr.NewStream()
			e.noteApp(f)
			return
		}
	}
}

// learnZigbee feeds discovery from a zigbee event and names the device
// that sent the frame.
func (e *engine) learnZigbee(ev *proto.Event) {
	str := func(k string) string {
		v, _ := ev.Fields.Get(k)
		s, _ := v.(string)
		return s
	}
	src := str("zigbee.mac.src")
	pan := str("zigbee.mac.src_pan")
	ieee := str("zigbee.nwk.src_ieee")
	short := str("zigbee.nwk.src")
	if len(src) == 23 { // the MAC source is the extended address
		e.disc.zigbee(src, "", pan, ev.Time)
		ev.DeviceID = "ieee:" + src
	}
	if ieee != "" {
		e.disc.zigbee(ieee, short, pan, ev.Time)
		if ev.DeviceID == "" && short == src {
			ev.DeviceID = "ieee:" + ieee
		}
	}
	if len(e.disc.dirty) > 0 {
		e.disc.announce(ev.Time)
	}
}

// noteApp tells discovery which protocol both ends of a flow speak.
func (e *engine) noteApp(f *flow) {
	f.appBox = e.reg.names[f.app]
	if f.appBox == nil {
		f.appBox = f.app
	}
	if e.disc != nil && f.app != "" {
		e.disc.protocol(f.net.SrcIP, f.app)
		e.disc.protocol(f.net.DstIP, f.app)
	}
}

// endFlow flushes a flow's reassembly, emits its record and removes it.
func (e *engine) endFlow(f *flow, reason string, ts time.Time) {
	if f == nil {
		return
	}
	for d := range f.half {
		if len(f.half[d].ooo) > 0 {
			e.flushHoles(f, proto.Direction(d))
		}
	}
	e.Emit(e.table.record(f, reason, ts, &e.arena))
	e.table.remove(f)
	f.stream = nil
}

// expire ends flows idle for longer than the flow timeout.
func (e *engine) expire(now time.Time) {
	for f := e.table.tail; f != nil; f = e.table.tail {
		if sub(now, f.end) < e.cfg.FlowTimeout {
			return
		}
		e.stats.FlowsExpired++
		e.endFlow(f, "timeout", now)
	}
}

// finish ends every flow, as at the end of a capture file.
func (e *engine) finish(reason string) {
	if e.disc != nil && len(e.disc.dirty) > 0 {
		var last time.Time
		if e.table.head != nil {
			last = e.table.head.end
		}
		e.disc.announce(last)
	}
	if e.defrag != nil {
		e.defrag.clear() // fragments do not span captures, as flows do not
	}
	for f := e.table.tail; f != nil; f = e.table.tail {
		e.endFlow(f, reason, f.end)
		if len(e.batch) >= e.cfg.BatchSize {
			e.flush()
		}
	}
	e.flush()
}

// fieldMaps recycles the Fields maps of the vigil.Events given to a
// Publisher that releases them. The zero value is ready to use.
type fieldMaps struct {
	free []map[string]any
}

// Limits of fieldMaps: how many maps it keeps, and the largest map (in
// fields) it takes back, so that one huge event does not pin memory.
const (
	maxFreeMaps   = 4096
	maxMapRecycle = 64
)

// Get returns an empty map: a recycled one when there is one, else a new
// one with room for n fields.
func (p *fieldMaps) Get(n int) map[string]any {
	if k := len(p.free); k > 0 {
		m := p.free[k-1]
		p.free[k-1] = nil
		p.free = p.free[:k-1]
		return m
	}
	return make(map[string]any, n)
}

// Put empties m and keeps it for a later Get. The caller must hold no
// other reference to m: whoever Gets it next writes into it.
func (p *fieldMaps) Put(m map[string]any) {
	if m == nil || len(m) > maxMapRecycle || len(p.free) >= maxFreeMaps {
		return
	}
	clear(m)
	p.free = append(p.free, m)
}
