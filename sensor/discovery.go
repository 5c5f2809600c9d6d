package sensor

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	vigil "github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/proto"
)

// DefaultOUIFile is where Debian's ieee-data package puts the IEEE MAC
// address block registry.
const DefaultOUIFile = "/usr/share/ieee-data/oui.txt"

// OUI maps the first three bytes of a MAC address to the vendor the IEEE
// assigned them to. It holds no pointers but one string, so that the
// garbage collector does not walk its tens of thousands of entries at
// every cycle of a long capture.
type OUI struct {
	prefixes []uint32 // sorted
	ends     []uint32 // end of each vendor name in names
	names    string
}

// Vendor returns the vendor of a MAC address, "" when unknown.
func (o *OUI) Vendor(mac [6]byte) string {
	if o == nil {
		return ""
	}
	key := uint32(mac[0])<<16 | uint32(mac[1])<<8 | uint32(mac[2])
	i, ok := slices.BinarySearch(o.prefixes, key)
	if !ok {
		return ""
	}
	start := uint32(0)
	if i > 0 {
		start = o.ends[i-1]
	}
	return o.names[start:o.ends[i]]
}

// Len returns the number of prefixes known.
func (o *OUI) Len() int {
	if o == nil {
		return 0
	}
	return len(o.prefixes)
}

// ParseOUI reads the IEEE registry text format ("B8-27-EB   (hex)\t\tName")
// or Wireshark's manuf format ("B8:27:EB\tShort\tLong name"). Lines it
// does not understand are skipped; of two lines for one prefix the later
// counts.
func ParseOUI(r io.Reader) (*OUI, error) {
	m := make(map[uint32]string, 40000)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if len(line) < 9 || line[0] == '#' {
			continue
		}
		var key [3]byte
		if line[2] != line[5] || line[2] != '-' && line[2] != ':' {
			continue
		}
		if _, err := hex.Decode(key[:], []byte{line[0], line[1], line[3], line[4], line[6], line[7]}); err != nil {
			continue
		}
		k := uint32(key[0])<<16 | uint32(key[1])<<8 | uint32(key[2])
		rest := line[8:]
		switch {
		case strings.Contains(rest, "(hex)"):
			_, name, _ := strings.Cut(rest, "(hex)")
			m[k] = strings.TrimSpace(name)
		case line[8] == '\t' || line[8] == ' ':
			f := strings.Split(strings.TrimSpace(rest), "\t")
			m[k] = strings.TrimSpace(f[len(f)-1])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read oui registry: %w", err)
	}
	o := &OUI{prefixes: make([]uint32, 0, len(m)), ends: make([]uint32, 0, len(m))}
	for k := range m {
		o.prefixes = append(o.prefixes, k)
	}
	slices.Sort(o.prefixes)
	var sb strings.Builder
	for _, k := range o.prefixes {
		sb.WriteString(m[k])
		o.ends = append(o.ends, uint32(sb.Len()))
	}
	o.names = sb.String()
	return o, nil
}

// LoadOUI reads an OUI registry file (see ParseOUI).
func LoadOUI(path string) (*OUI, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open oui registry: %w", err)
	}
	defer fh.Close()
	return ParseOUI(fh)
}

// Limits of discovery.
const (
	maxDeviceIPs       = 8
	maxDeviceProtocols = 16
	maxDeviceClientIDs = 4
	routerIPs          = 5 // a MAC behind this many private IPs is a router
)

// device is one host seen on the wire.
type device struct {
	id        string
	mac       [6]byte
	hasMAC    bool
	ips       []netip.Addr
	protocols []string
	clientIDs []string
	router    bool
	first     time.Time
	dirty     bool
	// IEEE 802.15.4 devices
	ieee   string // extended address, 00:11:..:77
	zshort string // last short (network) address seen
	zpan   string
}

// discovery learns devices from packets and announces them as inventory
// events of source "sensor" (state discovered in the inventory).
type discovery struct {
	byMAC  map[[6]byte]*device
	byIP   map[netip.Addr]*device
	byIEEE map[string]*device
	max    int
	oui    *OUI
	out    func(proto.Event)
	arena  *proto.FieldArena // the fields of announcements
	dirty  []*device
	full   uint64 // devices not tracked because the table was full

	// Senders observe learnt nothing new from, one per slot of a small
	// cache indexed by address: the same ones again (as most packets
	// are, the conversations of a busy network interleaved) are skipped
	// without a lookup.
	seen [cacheSlots]sender
	// Answers of byAddr, one per slot; a slot is cleared when byIP
	// changes for its address.
	last [cacheSlots]struct {
		ok  bool
		ip  netip.Addr
		dev *device
	}
}

// cacheSlots is the size of discovery's caches (a power of two).
const cacheSlots = 64

// slot returns the cache slot of an address.
func slot(ip netip.Addr) int {
	a := ip.As16()
	h := binary.LittleEndian.Uint32(a[12:]) ^ binary.LittleEndian.Uint32(a[8:])
	return int(h * 2654435761 >> 26)
}

// sender is what observe is given of a packet's sender.
type sender struct {
	ok     bool
	mac    [6]byte
	hasMAC bool
	src    netip.Addr
}

// known reports whether observe has learnt all it can from x lately.
func (d *discovery) known(x sender) bool {
	return d.seen[x.slot()] == x
}

// slot returns the cache slot of x in seen.
func (x *sender) slot() int {
	return (slot(x.src) ^ int(x.mac[5])) & (cacheSlots - 1)
}

// learnt notes that observe has learnt all it can from x.
func (d *discovery) learnt(x sender) {
	d.seen[x.slot()] = x
}

// byAddr returns the device at a local address, or nil.
func (d *discovery) byAddr(ip netip.Addr) *device {
	l := &d.last[slot(ip)]
	if l.ok && l.ip == ip {
		return l.dev
	}
	dev := d.byIP[ip]
	l.ok, l.ip, l.dev = true, ip, dev
	return dev
}

// setIP ties a local address to a device.
func (d *discovery) setIP(ip netip.Addr, dev *device) {
	d.byIP[ip] = dev
	d.last[slot(ip)].ok = false
}

func newDiscovery(max int, oui *OUI, arena *proto.FieldArena, out func(proto.Event)) *discovery {
	return &discovery{byMAC: map[[6]byte]*device{}, byIP: map[netip.Addr]*device{}, byIEEE: map[string]*device{},
		max: max, oui: oui, arena: arena, out: out}
}

// local reports whether an address belongs to the local network segment
// (private, link-local, unique local), so that it may be tied to a MAC.
func local(a netip.Addr) bool {
	return a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLoopback()
}

// observe learns from one packet: the sender's MAC (when hasMAC) and its
// source address.
func (d *discovery) observe(mac [6]byte, hasMAC bool, src netip.Addr, ts time.Time) {
	x := sender{ok: true, mac: mac, hasMAC: hasMAC, src: src}
	if d.known(x) {
		return // nothing new to learn
	}
	if !local(src) && !hasMAC {
		return
	}
	var dev *device
	if hasMAC {
		if mac[0]&1 != 0 || mac == [6]byte{} { // multicast, broadcast or none
			return
		}
		dev = d.byMAC[mac]
		if dev == nil {
			if len(d.byMAC)+len(d.byIP) >= d.max {
				d.full++
				return
			}
			dev = &device{id: "mac:" + macString(mac), mac: mac, hasMAC: true, first: ts}
			d.byMAC[mac] = dev
			d.mark(dev)
		}
		if local(src) && !dev.router && !slices.Contains(dev.ips, src) {
			if len(dev.ips) >= routerIPs {
				dev.router = true
			} else {
				dev.ips = append(dev.ips, src)
				if old := d.byIP[src]; old == nil || old.hasMAC {
					d.setIP(src, dev)
				}
			}
			d.mark(dev)
		}
		d.learnt(x)
		return
	}
	if dev = d.byIP[src]; dev == nil {
		if len(d.byMAC)+len(d.byIP) >= d.max {
			d.full++
			return
		}
		dev = &device{id: "ip:" + src.String(), ips: []netip.Addr{src}, first: ts}
		d.setIP(src, dev)
		d.mark(dev)
	}
	d.learnt(x)
}

// zigbee learns an 802.15.4 device from a frame's extended source address
// (MAC or NWK header) and the short address and PAN it uses.
func (d *discovery) zigbee(ieee, short, pan string, ts time.Time) {
	if len(ieee) != 23 {
		return
	}
	dev := d.byIEEE[ieee]
	if dev == nil {
		if len(d.byMAC)+len(d.byIP)+len(d.byIEEE) >= d.max {
			d.full++
			return
		}
		dev = &device{id: "ieee:" + ieee, ieee: ieee, first: ts, protocols: []string{"zigbee"}}
		d.byIEEE[ieee] = dev
		d.mark(dev)
	}
	if short != "" && short != dev.zshort {
		dev.zshort = short
		d.mark(dev)
	}
	if pan != "" && pan != dev.zpan {
		dev.zpan = pan
		d.mark(dev)
	}
}

// protocol notes that the device at addr speaks proto.
func (d *discovery) protocol(addr netip.Addr, proto string) {
	dev := d.byAddr(addr)
	if dev == nil || proto == "" || slices.Contains(dev.protocols, proto) || len(dev.protocols) >= maxDeviceProtocols {
		return
	}
	dev.protocols = append(dev.protocols, proto)
	d.mark(dev)
}

// clientID notes an MQTT client id used from addr.
func (d *discovery) clientID(addr netip.Addr, id string) {
	dev := d.byAddr(addr)
	if dev == nil || id == "" || slices.Contains(dev.clientIDs, id) || len(dev.clientIDs) >= maxDeviceClientIDs {
		return
	}
	dev.clientIDs = append(dev.clientIDs, id)
	d.mark(dev)
}

func (d *discovery) mark(dev *device) {
	if !dev.dirty {
		dev.dirty = true
		d.dirty = append(d.dirty, dev)
	}
}

// announce emits an inventory event for every device learnt or changed
// since the last call.
func (d *discovery) announce(ts time.Time) {
	for _, dev := range d.dirty {
		dev.dirty = false
		ev := proto.Event{Event: vigil.Event{
			Time:     ts,
			DeviceID: dev.id,
			Source:   "sensor",
			Kind:     vigil.KindInventory,
			Category: "host",
			Action:   "discovered",
		}, Fields: d.arena.Get(12)}
		f := &ev.Fields
		f.SetStr("device.first_seen", string(vigil.AppendTime(make([]byte, 0, 40), dev.first.UTC())))
		ni := vigil.NetIdentity{}
		if dev.hasMAC {
			ni.MAC = macString(dev.mac)
			f.SetStr("device.mac", ni.MAC)
			if v := d.oui.Vendor(dev.mac); v != "" {
				f.SetStr("device.vendor", v)
			} else if dev.mac[0]&2 != 0 {
				f.Set("device.mac_random", true) // locally administered
			}
		}
		var ips []string
		for _, a := range dev.ips {
			ips = append(ips, a.String())
		}
		ni.Addresses = ips
		if ips != nil {
			f.Set("device.ip", ips)
		}
		if dev.ieee == "" { // a Zigbee device has no IP interfaces
			if b, err := json.Marshal([]vigil.NetIdentity{ni}); err == nil {
				f.SetStr("interfaces", string(b))
			}
		}
		if dev.protocols != nil {
			f.Set("device.protocols", slices.Clone(dev.protocols))
		}
		if dev.clientIDs != nil {
			f.Set("device.mqtt_client_ids", slices.Clone(dev.clientIDs))
		}
		if dev.router {
			f.SetStr("device.class", vigil.ClassGateway)
		}
		if dev.ieee != "" {
			f.SetStr("device.ieee_address", dev.ieee)
			if dev.zshort != "" {
				f.SetStr("device.zigbee.short_address", dev.zshort)
			}
			if dev.zpan != "" {
				f.SetStr("device.zigbee.pan_id", dev.zpan)
			}
			var eui [6]byte
			if b, err := hex.DecodeString(strings.ReplaceAll(dev.ieee[:8], ":", "")); err == nil {
				copy(eui[:], b)
				if v := d.oui.Vendor(eui); v != "" {
					f.SetStr("device.vendor", v)
				}
			}
		}
		d.out(ev)
	}
	clear(d.dirty)
	d.dirty = d.dirty[:0]
}

func macString(m [6]byte) string {
	const hexd = "0123456789abcdef"
	b := make([]byte, 0, 17)
	for i, x := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hexd[x>>4], hexd[x&15])
	}
	return string(b)
}
