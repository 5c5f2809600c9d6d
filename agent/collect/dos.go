package collect

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/wire"
)

// KindDoS is the kind of the denial-of-service events DoS emits.
const KindDoS = "dos"

// DoS actions: one episode of each is reported by a start and an end event.
const (
	ActionSYNFlood            = "syn_flood"
	ActionUDPFlood            = "udp_flood"
	ActionICMPFlood           = "icmp_flood"
	ActionConntrackExhaustion = "conntrack_exhaustion"
	ActionBandwidthSpike      = "bandwidth_spike"
)

// DoSThresholds say when the kernel's counters mean an attack. Rates are
// per second over the interval between two collections. A zero field takes
// its default (DefaultDoSThresholds); a negative one turns its test off.
type DoSThresholds struct {
	// SYNRecv is the number of half-open TCP connections (SYN_RECV) at once.
	SYNRecv float64 `json:"syn_recv,omitempty"`
	// SYNCookies is SYN cookies sent per second (the listen queue is full).
	SYNCookies float64 `json:"syn_cookies_per_sec,omitempty"`
	// ListenDrops is SYNs dropped per second (ListenDrops, TCPReqQFullDrop).
	ListenDrops float64 `json:"listen_drops_per_sec,omitempty"`
	// UDPErrors is UDP datagrams lost per second (InErrors, RcvbufErrors).
	UDPErrors float64 `json:"udp_errors_per_sec,omitempty"`
	// UDPNoPorts is UDP datagrams to closed ports per second.
	UDPNoPorts float64 `json:"udp_noports_per_sec,omitempty"`
	// ICMPIn is ICMP messages received per second.
	ICMPIn float64 `json:"icmp_in_per_sec,omitempty"`
	// ConntrackPct is the connection-tracking table's fill (count/max, %).
	ConntrackPct float64 `json:"conntrack_pct,omitempty"`
	// BandwidthFactor is how many times its norm the received traffic
	// (bytes or packets per second) must be; BandwidthMinBytes and
	// BandwidthMinPackets are floors under which it never counts.
	BandwidthFactor     float64 `json:"bandwidth_factor,omitempty"`
	BandwidthMinBytes   float64 `json:"bandwidth_min_bytes_per_sec,omitempty"`
	BandwidthMinPackets float64 `json:"bandwidth_min_packets_per_sec,omitempty"`
	// BandwidthLearn is the number of collections that make the norm
	// before a spike can be reported.
	BandwidthLearn float64 `json:"bandwidth_learn,omitempty"`
}

// DefaultDoSThresholds are the thresholds of a zero DoSThresholds field.
var DefaultDoSThresholds = DoSThresholds{
	SYNRecv: 128, SYNCookies: 50, ListenDrops: 50,
	UDPErrors: 100, UDPNoPorts: 1000, ICMPIn: 500, ConntrackPct: 90,
	BandwidthFactor: 10, BandwidthMinBytes: 1 << 20, BandwidthMinPackets: 2000, BandwidthLearn: 30,
}

func (t DoSThresholds) filled() DoSThresholds {
	d := DefaultDoSThresholds
	for _, p := range []struct{ v, def *float64 }{
		{&t.SYNRecv, &d.SYNRecv}, {&t.SYNCookies, &d.SYNCookies}, {&t.ListenDrops, &d.ListenDrops},
		{&t.UDPErrors, &d.UDPErrors}, {&t.UDPNoPorts, &d.UDPNoPorts}, {&t.ICMPIn, &d.ICMPIn},
		{&t.ConntrackPct, &d.ConntrackPct}, {&t.BandwidthFactor, &d.BandwidthFactor},
		{&t.BandwidthMinBytes, &d.BandwidthMinBytes}, {&t.BandwidthMinPackets, &d.BandwidthMinPackets},
		{&t.BandwidthLearn, &d.BandwidthLearn},
	} {
		if *p.v == 0 {
			*p.v = *p.def
		}
	}
	return t
}

// over reports whether v reaches a threshold that is on.
func over(v, threshold float64) bool { return threshold > 0 && v >= threshold }

// dosCounters are the kernel counters one collection reads.
type dosCounters struct {
	syncookies, listenDrops, listenOverflows, reqQFullDrop uint64
	udpInErrors, udpRcvbuf, udpNoPorts, udpIn              uint64
	icmpIn, icmpEchos                                      uint64
	rxBytes, rxPackets                                     uint64
}

// DoS reports denial-of-service episodes from the kernel's own counters:
// SYN floods (half-open connections in /proc/net/tcp{,6}, SYN cookies and
// listen-queue drops in /proc/net/netstat), UDP floods (receive errors,
// buffer drops and datagrams to closed ports in /proc/net/snmp), ICMP
// floods, a full connection-tracking table
// (/proc/sys/net/netfilter/nf_conntrack_{count,max}) and received traffic
// far above the device's own norm (/proc/net/dev, an exponentially
// weighted mean learnt while no spike is on).
//
// Each episode is one event when it starts and one when it ends (its
// condition false at two collections in a row), kind dos, event.type start
// or end; the numbers are rates per second since the previous collection.
// The first call only records the counters. A counter that goes down (a
// reset, a namespace or module reloaded) counts as zero for that interval.
type DoS struct {
	Env        Env
	Thresholds DoSThresholds
	// TopSources is how many source addresses a SYN flood event names
	// (default 5).
	TopSources int

	prev     dosCounters
	prevTime time.Time
	have     bool
	active   map[string]*dosEpisode
	// The norm of received traffic.
	normBytes, normPackets float64
	normN                  int
}

type dosEpisode struct {
	start time.Time
	quiet int // collections in a row without the condition
	peak  map[string]float64
	last  wire.Fields
}

// Name returns "dos".
func (d *DoS) Name() string { return "dos" }

// Collect reads the counters and emits the episodes that start or end.
func (d *DoS) Collect(_ context.Context, r *wire.Report) error {
	now := d.Env.now()
	var c dosCounters
	var errs []error
	if err := d.readCounters(&c); err != nil {
		errs = append(errs, err)
	}
	if !d.have || !now.After(d.prevTime) {
		d.prev, d.prevTime, d.have = c, now, true
		return errors.Join(errs...)
	}
	secs := now.Sub(d.prevTime).Seconds()
	rate := func(cur, prev uint64) float64 {
		if cur < prev {
			return 0 // reset
		}
		return float64(cur-prev) / secs
	}
	p := d.prev
	d.prev, d.prevTime = c, now
	t := d.Thresholds.filled()
	if d.active == nil {
		d.active = map[string]*dosEpisode{}
	}

	// SYN flood.
	cookies := rate(c.syncookies, p.syncookies)
	drops := max(rate(c.listenDrops, p.listenDrops), rate(c.reqQFullDrop, p.reqQFullDrop))
	var half halfOpen
	if err := readHalfOpen(d.Env, &half); err != nil {
		errs = append(errs, err)
	}
	synOn := over(float64(half.total), t.SYNRecv) || over(cookies, t.SYNCookies) || over(drops, t.ListenDrops)
	d.episode(r, now, ActionSYNFlood, synOn, func() (wire.Fields, map[string]float64) {
		f := wire.Fields{
			"network.transport":                  "tcp",
			"dos.syn_recv":                       strconv.Itoa(half.total),
			"dos.syn_cookies_per_sec":            fmtRate(cookies),
			"dos.listen_drops_per_sec":           fmtRate(drops),
			"dos.listen_overflows_per_sec":       fmtRate(rate(c.listenOverflows, p.listenOverflows)),
			"dos.threshold.syn_recv":             fmtRate(t.SYNRecv),
			"dos.threshold.syn_cookies_per_sec":  fmtRate(t.SYNCookies),
			"dos.threshold.listen_drops_per_sec": fmtRate(t.ListenDrops),
		}
		if port, n := half.topPort(); n > 0 {
			f["destination.port"] = strconv.Itoa(int(port))
			f["dos.syn_recv_on_port"] = strconv.Itoa(n)
		}
		n := d.TopSources
		if n <= 0 {
			n = 5
		}
		if top := half.topSources(n); len(top) > 0 {
			f["source.ip"] = top[0].addr.String()
			var b strings.Builder
			for i, s := range top {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(s.addr.String() + ":" + strconv.Itoa(s.n))
			}
			f["dos.top_sources"] = b.String()
		}
		return f, map[string]float64{"syn_recv": float64(half.total), "syn_cookies_per_sec": cookies, "listen_drops_per_sec": drops}
	})

	// UDP flood.
	udpErr := rate(c.udpInErrors, p.udpInErrors) // InErrors counts the RcvbufErrors too
	noPorts := rate(c.udpNoPorts, p.udpNoPorts)
	d.episode(r, now, ActionUDPFlood, over(udpErr, t.UDPErrors) || over(noPorts, t.UDPNoPorts), func() (wire.Fields, map[string]float64) {
		return wire.Fields{
			"network.transport":                 "udp",
			"dos.udp_in_per_sec":                fmtRate(rate(c.udpIn, p.udpIn)),
			"dos.udp_errors_per_sec":            fmtRate(udpErr),
			"dos.udp_rcvbuf_errors_per_sec":     fmtRate(rate(c.udpRcvbuf, p.udpRcvbuf)),
			"dos.udp_noports_per_sec":           fmtRate(noPorts),
			"dos.threshold.udp_errors_per_sec":  fmtRate(t.UDPErrors),
			"dos.threshold.udp_noports_per_sec": fmtRate(t.UDPNoPorts),
		}, map[string]float64{"udp_errors_per_sec": udpErr, "udp_noports_per_sec": noPorts}
	})

	// ICMP flood.
	icmp := rate(c.icmpIn, p.icmpIn)
	d.episode(r, now, ActionICMPFlood, over(icmp, t.ICMPIn), func() (wire.Fields, map[string]float64) {
		return wire.Fields{
			"network.transport":             "icmp",
			"dos.icmp_in_per_sec":           fmtRate(icmp),
			"dos.icmp_echo_in_per_sec":      fmtRate(rate(c.icmpEchos, p.icmpEchos)),
			"dos.threshold.icmp_in_per_sec": fmtRate(t.ICMPIn),
		}, map[string]float64{"icmp_in_per_sec": icmp}
	})

	// Connection tracking.
	if count, cmax, ok := readConntrack(d.Env); ok {
		pct := 100 * float64(count) / float64(cmax)
		d.episode(r, now, ActionConntrackExhaustion, over(pct, t.ConntrackPct), func() (wire.Fields, map[string]float64) {
			return wire.Fields{
				"dos.conntrack_count":         strconv.FormatUint(count, 10),
				"dos.conntrack_max":           strconv.FormatUint(cmax, 10),
				"dos.conntrack_pct":           fmtRate(pct),
				"dos.threshold.conntrack_pct": fmtRate(t.ConntrackPct),
			}, map[string]float64{"conntrack_pct": pct}
		})
	}

	// Bandwidth against the norm.
	bps, pps := rate(c.rxBytes, p.rxBytes), rate(c.rxPackets, p.rxPackets)
	learnt := float64(d.normN) >= t.BandwidthLearn
	spike := learnt && t.BandwidthFactor > 0 &&
		((bps >= t.BandwidthMinBytes && bps > t.BandwidthFactor*d.normBytes) ||
			(pps >= t.BandwidthMinPackets && pps > t.BandwidthFactor*d.normPackets))
	nb, np := d.normBytes, d.normPackets
	d.episode(r, now, ActionBandwidthSpike, spike, func() (wire.Fields, map[string]float64) {
		return wire.Fields{
			"dos.rx_bytes_per_sec":        fmtRate(bps),
			"dos.rx_packets_per_sec":      fmtRate(pps),
			"dos.norm.rx_bytes_per_sec":   fmtRate(nb),
			"dos.norm.rx_packets_per_sec": fmtRate(np),
			"dos.threshold.factor":        fmtRate(t.BandwidthFactor),
		}, map[string]float64{"rx_bytes_per_sec": bps, "rx_packets_per_sec": pps}
	})
	if d.active[ActionBandwidthSpike] == nil { // the norm learns from normal traffic only
		const alpha = 0.05
		if d.normN == 0 {
			d.normBytes, d.normPackets = bps, pps
		} else {
			a := max(alpha, 1/float64(d.normN+1)) // a plain mean while learning
			d.normBytes += a * (bps - d.normBytes)
			d.normPackets += a * (pps - d.normPackets)
		}
		d.normN++
	}
	return errors.Join(errs...)
}

// episode emits the start of an episode when on and none is active, keeps
// its peaks while it lasts, and emits its end after two quiet collections.
func (d *DoS) episode(r *wire.Report, now time.Time, action string, on bool, fields func() (wire.Fields, map[string]float64)) {
	e := d.active[action]
	switch {
	case on && e == nil:
		f, peaks := fields()
		e = &dosEpisode{start: now, peak: peaks, last: f}
		d.active[action] = e
		f["event.type"] = "start"
		r.Events = append(r.Events, newEvent(now, KindDoS, "network", action, "unknown", "high", f))
	case on:
		e.quiet = 0
		f, peaks := fields()
		for k, v := range peaks {
			e.peak[k] = max(e.peak[k], v)
		}
		e.last = f
	case e != nil:
		e.quiet++
		if e.quiet < 2 {
			return
		}
		delete(d.active, action)
		f := wire.Fields{}
		for k, v := range e.last {
			if !strings.HasPrefix(k, "dos.") || strings.HasPrefix(k, "dos.threshold.") || k == "dos.top_sources" {
				f[k] = v
			}
		}
		for k, v := range e.peak {
			f["dos.peak."+k] = fmtRate(v)
		}
		f["event.type"] = "end"
		f["event.start"] = e.start.Format(time.RFC3339)
		f["event.duration"] = strconv.FormatInt(int64(now.Sub(e.start)), 10)
		r.Events = append(r.Events, newEvent(now, KindDoS, "network", action, "unknown", "informational", f))
	}
}

func fmtRate(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// readCounters fills c from /proc/net/snmp, /proc/net/netstat and
// /proc/net/dev; a missing file leaves its counters zero.
func (d *DoS) readCounters(c *dosCounters) error {
	var errs []error
	for _, name := range []string{"/proc/net/snmp", "/proc/net/netstat"} {
		b, err := os.ReadFile(d.Env.path(name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot read counters: %w", err))
			continue
		}
		err = ParseSNMP(b, func(proto, n string, v uint64) {
			switch proto {
			case "TcpExt":
				switch n {
				case "SyncookiesSent":
					c.syncookies = v
				case "ListenDrops":
					c.listenDrops = v
				case "ListenOverflows":
					c.listenOverflows = v
				case "TCPReqQFullDrop":
					c.reqQFullDrop = v
				}
			case "Udp":
				switch n {
				case "InErrors":
					c.udpInErrors = v
				case "RcvbufErrors":
					c.udpRcvbuf = v
				case "NoPorts":
					c.udpNoPorts = v
				case "InDatagrams":
					c.udpIn = v
				}
			case "Icmp":
				switch n {
				case "InMsgs":
					c.icmpIn = v
				case "InEchos":
					c.icmpEchos = v
				}
			}
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot parse %s: %w", name, err))
		}
	}
	if b, err := os.ReadFile(d.Env.path("/proc/net/dev")); err == nil {
		c.rxBytes, c.rxPackets = parseNetDevRx(b)
	}
	return errors.Join(errs...)
}

// parseNetDevRx sums received bytes and packets of every interface but
// loopback in /proc/net/dev.
func parseNetDevRx(b []byte) (bytesIn, packets uint64) {
	for len(b) > 0 {
		var l []byte
		l, b, _ = bytes.Cut(b, []byte("\n"))
		name, rest, ok := bytes.Cut(l, []byte(":"))
		if !ok || string(bytes.TrimSpace(name)) == "lo" {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) < 2 {
			continue
		}
		by, err1 := strconv.ParseUint(string(f[0]), 10, 64)
		pk, err2 := strconv.ParseUint(string(f[1]), 10, 64)
		if err1 == nil && err2 == nil {
			bytesIn += by
			packets += pk
		}
	}
	return bytesIn, packets
}

// readConntrack reads the connection-tracking table's count and size; ok
// is false without netfilter's conntrack.
func readConntrack(env Env) (count, cmax uint64, ok bool) {
	read := func(p string) (uint64, bool) {
		b, err := os.ReadFile(env.path(p))
		if err != nil {
			return 0, false
		}
		v, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
		return v, err == nil
	}
	count, ok1 := read("/proc/sys/net/netfilter/nf_conntrack_count")
	cmax, ok2 := read("/proc/sys/net/netfilter/nf_conntrack_max")
	return count, cmax, ok1 && ok2 && cmax > 0
}

// halfOpen counts half-open connections per local port and remote address.
type halfOpen struct {
	total   int
	ports   map[uint16]int
	sources map[netip.Addr]int
}

type sourceCount struct {
	addr netip.Addr
	n    int
}

func (h *halfOpen) topPort() (uint16, int) {
	var port uint16
	n := 0
	for p, c := range h.ports {
		if c > n || (c == n && p < port) {
			port, n = p, c
		}
	}
	return port, n
}

func (h *halfOpen) topSources(n int) []sourceCount {
	out := make([]sourceCount, 0, len(h.sources))
	for a, c := range h.sources {
		out = append(out, sourceCount{a, c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].n != out[j].n {
			return out[i].n > out[j].n
		}
		return out[i].addr.Less(out[j].addr)
	})
	return out[:min(n, len(out))]
}

// readHalfOpen counts the SYN_RECV lines of /proc/net/tcp and tcp6
// without keeping the other sockets.
func readHalfOpen(env Env, h *halfOpen) error {
	var errs []error
	for _, t := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(env.path(t))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot read half-open connections: %w", err))
			continue
		}
		sc := bufio.NewScanner(f)
		n := 0
		for sc.Scan() {
			n++
			if n == 1 {
				continue
			}
			l := sc.Bytes()
			fl := bytes.Fields(l)
			if len(fl) < 4 || string(fl[3]) != "03" { // TCP_SYN_RECV
				continue
			}
			local, err1 := parseHexAddr(string(fl[1]))
			remote, err2 := parseHexAddr(string(fl[2]))
			if err1 != nil || err2 != nil {
				continue
			}
			if h.ports == nil {
				h.ports, h.sources = map[uint16]int{}, map[netip.Addr]int{}
			}
			h.total++
			h.ports[local.Port()]++
			h.sources[remote.Addr()]++
		}
		f.Close()
	}
	return errors.Join(errs...)
}
