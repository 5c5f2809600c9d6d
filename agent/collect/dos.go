package collect

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
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

// dosCounters are the kernel counters one collection reads, indexed by
// the c* constants.
type dosCounters [nCounters]uint64

const (
	cSyncookies = iota
	cListenDrops
	cListenOverflows
	cReqQFullDrop
	cUDPInErrors
	cUDPRcvbuf
	cUDPNoPorts
	cUDPIn
	cICMPIn
	cICMPEchos
	cRxBytes
	cRxPackets
	nCounters
)

// The values an event reports, indexed by the m* constants, and their
// field names (after "dos.").
const (
	mSYNRecv = iota
	mSYNCookies
	mListenDrops
	mListenOverflows
	mUDPIn
	mUDPErrors
	mUDPRcvbuf
	mUDPNoPorts
	mICMPIn
	mICMPEchos
	mConntrackCount
	mConntrackMax
	mConntrackPct
	mRxBytes
	mRxPackets
	mNormBytes
	mNormPackets
	nMeasures
)

var measureNames = [nMeasures]string{"syn_recv", "syn_cookies_per_sec", "listen_drops_per_sec", "listen_overflows_per_sec",
	"udp_in_per_sec", "udp_errors_per_sec", "udp_rcvbuf_errors_per_sec", "udp_noports_per_sec",
	"icmp_in_per_sec", "icmp_echo_in_per_sec", "conntrack_count", "conntrack_max", "conntrack_pct",
	"rx_bytes_per_sec", "rx_packets_per_sec", "norm.rx_bytes_per_sec", "norm.rx_packets_per_sec"}

// dosCheck is one kind of episode: the values its events report and the
// values whose thresholds start it (any of them).
type dosCheck struct {
	action, transport string
	report            []int
	tested            []int
}

var dosChecks = [...]dosCheck{
	{ActionSYNFlood, "tcp", []int{mSYNRecv, mSYNCookies, mListenDrops, mListenOverflows}, []int{mSYNRecv, mSYNCookies, mListenDrops}},
	{ActionUDPFlood, "udp", []int{mUDPIn, mUDPErrors, mUDPRcvbuf, mUDPNoPorts}, []int{mUDPErrors, mUDPNoPorts}},
	{ActionICMPFlood, "icmp", []int{mICMPIn, mICMPEchos}, []int{mICMPIn}},
	{ActionConntrackExhaustion, "", []int{mConntrackCount, mConntrackMax, mConntrackPct}, []int{mConntrackPct}},
	{ActionBandwidthSpike, "", []int{mRxBytes, mRxPackets, mNormBytes, mNormPackets}, nil},
}

// DoS reports denial-of-service episodes from the kernel's own counters:
// SYN floods (half-open connections in /proc/net/tcp{,6}, SYN cookies and
// listen-queue drops in /proc/net/netstat), UDP floods (receive errors,
// buffer drops and datagrams to closed ports in /proc/net/snmp and
// /proc/net/snmp6), ICMP floods (IPv4 and IPv6), a full connection-tracking table
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
	active   [len(dosChecks)]*dosEpisode
	// The norm of received traffic.
	normBytes, normPackets float64
	normN                  int
}

type dosEpisode struct {
	start time.Time
	quiet int // collections in a row without the condition
	peak  [nMeasures]float64
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
	var rate [nCounters]float64
	for i := range c {
		if c[i] >= d.prev[i] { // else a reset: zero
			rate[i] = float64(c[i]-d.prev[i]) / secs
		}
	}
	d.prev, d.prevTime = c, now
	t := d.Thresholds.filled()

	var half halfOpen
	if err := readHalfOpen(d.Env, &half); err != nil {
		errs = append(errs, err)
	}
	var m [nMeasures]float64
	m[mSYNRecv] = float64(half.total)
	m[mSYNCookies] = rate[cSyncookies]
	m[mListenDrops] = max(rate[cListenDrops], rate[cReqQFullDrop])
	m[mListenOverflows] = rate[cListenOverflows]
	m[mUDPIn], m[mUDPRcvbuf], m[mUDPNoPorts] = rate[cUDPIn], rate[cUDPRcvbuf], rate[cUDPNoPorts]
	m[mUDPErrors] = rate[cUDPInErrors] // InErrors counts the RcvbufErrors too
	m[mICMPIn], m[mICMPEchos] = rate[cICMPIn], rate[cICMPEchos]
	count, cmax, conntrack := readConntrack(d.Env)
	if conntrack {
		m[mConntrackCount], m[mConntrackMax] = float64(count), float64(cmax)
		m[mConntrackPct] = 100 * float64(count) / float64(cmax)
	}
	m[mRxBytes], m[mRxPackets] = rate[cRxBytes], rate[cRxPackets]
	m[mNormBytes], m[mNormPackets] = d.normBytes, d.normPackets
	var th [nMeasures]float64
	th[mSYNRecv], th[mSYNCookies], th[mListenDrops] = t.SYNRecv, t.SYNCookies, t.ListenDrops
	th[mUDPErrors], th[mUDPNoPorts], th[mICMPIn], th[mConntrackPct] = t.UDPErrors, t.UDPNoPorts, t.ICMPIn, t.ConntrackPct

	for i, ck := range dosChecks {
		on := false
		for _, k := range ck.tested {
			on = on || (th[k] > 0 && m[k] >= th[k])
		}
		if ck.action == ActionBandwidthSpike {
			on = float64(d.normN) >= t.BandwidthLearn && t.BandwidthFactor > 0 &&
				((m[mRxBytes] >= t.BandwidthMinBytes && m[mRxBytes] > t.BandwidthFactor*d.normBytes) ||
					(m[mRxPackets] >= t.BandwidthMinPackets && m[mRxPackets] > t.BandwidthFactor*d.normPackets))
		}
		if ck.action == ActionConntrackExhaustion && !conntrack {
			continue
		}
		d.episode(r, now, i, on, &m, &th, &half)
	}
	if d.active[len(dosChecks)-1] == nil { // the norm learns from normal traffic only
		const alpha = 0.05
		a := max(alpha, 1/float64(d.normN+1)) // a plain mean while learning
		d.normBytes += a * (m[mRxBytes] - d.normBytes)
		d.normPackets += a * (m[mRxPackets] - d.normPackets)
		d.normN++
	}
	return errors.Join(errs...)
}

// episode emits the start of check i's episode when on and none is
// active, keeps its peaks while it lasts, and emits its end after two
// quiet collections.
func (d *DoS) episode(r *wire.Report, now time.Time, i int, on bool, m, th *[nMeasures]float64, half *halfOpen) {
	ck, e := &dosChecks[i], d.active[i]
	if !on {
		if e == nil {
			return
		}
		if e.quiet++; e.quiet < 2 {
			return
		}
		d.active[i] = nil
		f := e.last
		for _, k := range ck.report {
			delete(f, "dos."+measureNames[k])
		}
		for _, k := range append(ck.report[:len(ck.report):len(ck.report)], ck.tested...) {
			f["dos.peak."+measureNames[k]] = fmtRate(e.peak[k])
		}
		f["event.type"] = "end"
		f["event.start"] = e.start.Format(time.RFC3339)
		f["event.duration"] = strconv.FormatInt(int64(now.Sub(e.start)), 10)
		r.Events = append(r.Events, newEvent(now, KindDoS, "network", ck.action, "unknown", "informational", f))
		return
	}
	f := wire.Fields{}
	if ck.transport != "" {
		f["network.transport"] = ck.transport
	}
	for _, k := range ck.report {
		f["dos."+measureNames[k]] = fmtRate(m[k])
	}
	for _, k := range ck.tested {
		f["dos.threshold."+measureNames[k]] = fmtRate(th[k])
	}
	switch ck.action {
	case ActionSYNFlood:
		if port, n := half.topPort(); n > 0 {
			f["destination.port"] = strconv.Itoa(int(port))
			f["dos.syn_recv_on_port"] = strconv.Itoa(n)
		}
		n := d.TopSources
		if n <= 0 {
			n = 5
		}
		if top := half.topSources(n); len(top) > 0 {
			f["source.ip"] = top[0].addr
			var b strings.Builder
			for i, s := range top {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(s.addr + ":" + strconv.Itoa(s.n))
			}
			f["dos.top_sources"] = b.String()
		}
	case ActionBandwidthSpike:
		f["dos.threshold.factor"] = fmtRate(d.Thresholds.filled().BandwidthFactor)
	}
	if e == nil {
		e = &dosEpisode{start: now}
		d.active[i] = e
		g := make(wire.Fields, len(f)+1)
		for k, v := range f {
			g[k] = v
		}
		g["event.type"] = "start"
		r.Events = append(r.Events, newEvent(now, KindDoS, "network", ck.action, "unknown", "high", g))
	}
	e.quiet, e.last = 0, f
	for k := range m {
		e.peak[k] = max(e.peak[k], m[k])
	}
}

func fmtRate(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// readCounters fills c from /proc/net/snmp, /proc/net/snmp6 (IPv6 UDP and
// ICMP added to the IPv4 counts), /proc/net/netstat and /proc/net/dev; a
// missing file leaves its counters zero.
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
					c[cSyncookies] = v
				case "ListenDrops":
					c[cListenDrops] = v
				case "ListenOverflows":
					c[cListenOverflows] = v
				case "TCPReqQFullDrop":
					c[cReqQFullDrop] = v
				}
			case "Udp":
				switch n {
				case "InErrors":
					c[cUDPInErrors] = v
				case "RcvbufErrors":
					c[cUDPRcvbuf] = v
				case "NoPorts":
					c[cUDPNoPorts] = v
				case "InDatagrams":
					c[cUDPIn] = v
				}
			case "Icmp":
				switch n {
				case "InMsgs":
					c[cICMPIn] = v
				case "InEchos":
					c[cICMPEchos] = v
				}
			}
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot parse %s: %w", name, err))
		}
	}
	// IPv6 floods count in the same measures: the rates are the device's,
	// whichever the family.
	if b, err := os.ReadFile(d.Env.path("/proc/net/snmp6")); err == nil {
		err = ParseSNMP6(b, func(n string, v uint64) {
			switch n {
			case "Udp6InDatagrams":
				c[cUDPIn] += v
			case "Udp6InErrors":
				c[cUDPInErrors] += v
			case "Udp6RcvbufErrors":
				c[cUDPRcvbuf] += v
			case "Udp6NoPorts":
				c[cUDPNoPorts] += v
			case "Icmp6InMsgs":
				c[cICMPIn] += v
			case "Icmp6InEchos":
				c[cICMPEchos] += v
			}
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot parse /proc/net/snmp6: %w", err))
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("cannot read counters: %w", err))
	}
	if b, err := os.ReadFile(d.Env.path("/proc/net/dev")); err == nil {
		c[cRxBytes], c[cRxPackets] = parseNetDevRx(b)
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
		f := strings.Fields(string(rest))
		if len(f) < 2 {
			continue
		}
		by, err1 := strconv.ParseUint(f[0], 10, 64)
		pk, err2 := strconv.ParseUint(f[1], 10, 64)
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
	sources map[string]int
}

type sourceCount struct {
	addr string
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
		return out[i].addr < out[j].addr
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
			fl := strings.Fields(sc.Text())
			if len(fl) < 4 || fl[3] != "03" { // TCP_SYN_RECV
				continue
			}
			local, err1 := parseHexAddr(fl[1])
			remote, err2 := parseHexAddr(fl[2])
			if err1 != nil || err2 != nil {
				continue
			}
			if h.ports == nil {
				h.ports, h.sources = map[uint16]int{}, map[string]int{}
			}
			h.total++
			h.ports[local.Port()]++
			h.sources[remote.Addr().String()]++
		}
		f.Close()
	}
	return errors.Join(errs...)
}
