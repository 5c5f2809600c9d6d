package sensor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"time"
	"unsafe"

	"github.com/gopacket/gopacket/pcapgo"
	"github.com/prometheus/client_golang/prometheus"
	vigil "github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/proto"
)

// Publisher receives batches of events. The sensor calls it from one
// goroutine and does not touch a batch after PublishEvents returns, so an
// implementation that keeps the events must copy the slice (the events
// themselves it may keep, unless it is a Releaser).
type Publisher interface {
	PublishEvents(ctx context.Context, events []vigil.Event) error
}

// Releaser is implemented by a Publisher that is done with the events of
// a batch when PublishEvents returns, typically because it has serialized
// them (NDJSON does). When ReleasesEvents reports true, the sensor takes
// the events back after each PublishEvents call and reuses their Fields
// maps for later events: the Publisher must then keep no reference to an
// event's Fields map, nor to the Event values of the batch, once
// PublishEvents has returned. Field values themselves (strings, numbers)
// are never modified and may be kept. This saves most of the sensor's
// allocations.
type Releaser interface {
	Publisher
	ReleasesEvents() bool
}

// LinePublisher is implemented by a Publisher that sends events on as
// JSON lines. The sensor then gives it each batch encoded, one
// vigil.Event JSON object per line as NDJSON writes them (what
// encoding/json writes, fields sorted by name), and never makes the
// batch's vigil.Events and their Fields maps: much cheaper than
// PublishEvents.
type LinePublisher interface {
	Publisher
	// PublishLines publishes n events, lines holding one per line. The
	// sensor reuses lines once PublishLines returns.
	PublishLines(ctx context.Context, lines []byte, n int) error
}

// Config configures a sensor run. The zero value reads nothing.
type Config struct {
	// Pcaps are capture files (pcap or pcapng) read one after the other.
	// Flows end at the end of each file.
	Pcaps []string
	// Iface is a network interface to capture from live (AF_PACKET, pure
	// Go, Linux only; needs CAP_NET_RAW). Run captures until ctx is done,
	// after the files in Pcaps, if any.
	Iface string
	// BPF is a capture filter in tcpdump's syntax (the common subset:
	// tcp/udp/icmp/ip/ip6, src/dst, host, net, port, portrange, and, or,
	// not, parentheses), applied in user space to files and live capture.
	// A syntax error is EINVALID.
	BPF string
	// Publisher receives the events. When nil, events are written as
	// NDJSON to Output (one vigil.Event JSON object per line).
	Publisher Publisher
	// Output is where NDJSON events go when Publisher is nil. When both
	// are nil the events are counted and dropped.
	Output io.Writer
	// Progress, when set, receives a one-line progress report for files
	// ("\r"-refreshed, about twice a second).
	Progress io.Writer
	// Logger logs read errors; nil discards.
	Logger *slog.Logger
	// Registerer receives the sensor's metrics (vigil_sensor_total by
	// "what", vigil_sensor_flows_active); nil registers none.
	Registerer prometheus.Registerer

	// Protocols are the decoders; nil means DefaultProtocols(cfg).
	Protocols []Protocol
	// PayloadPreview is how many payload bytes message events keep
	// (MQTT PUBLISH). Default 256.
	PayloadPreview int
	// MaxFlows bounds the flow table; the least recently seen flow is
	// evicted (flow.reason "evicted") when a new one does not fit.
	// Default 262144.
	MaxFlows int
	// FlowTimeout ends flows idle for that long. Default 2 minutes.
	FlowTimeout time.Duration
	// FlowInterval emits a flow record (flow.reason "periodic") for a
	// live flow every interval of capture time. Default 1 minute;
	// negative disables.
	FlowInterval time.Duration
	// MaxIPDatagrams bounds the IP datagrams (IPv4 and IPv6) being
	// reassembled from fragments; when full, the oldest is dropped.
	// Default 1024; negative turns reassembly off (later fragments are
	// then only counted).
	MaxIPDatagrams int
	// FragmentTimeout drops a datagram whose fragments have not all come
	// within that much capture time of its first. Default 30 s.
	FragmentTimeout time.Duration
	// MaxStreamBuffer bounds what a TCP direction keeps for a parser
	// waiting for the rest of a message. Default 2 MiB.
	MaxStreamBuffer int
	// BatchSize is how many events go to the Publisher at once.
	// Default 256.
	BatchSize int

	// DisableDiscovery turns off device discovery: by default every
	// host seen (MAC, local IP addresses, protocols, MQTT client ids,
	// vendor) is announced as a kind "inventory" event of source
	// "sensor", which the inventory records as a discovered device.
	DisableDiscovery bool
	// MaxDevices bounds the devices discovery tracks. Default 65536.
	MaxDevices int
	// OUI names vendors from MAC addresses; nil loads DefaultOUIFile
	// when it exists (Debian package ieee-data).
	OUI *OUI
}

func (c Config) withDefaults() Config {
	if c.PayloadPreview == 0 {
		c.PayloadPreview = 256
	}
	if c.Protocols == nil {
		c.Protocols = DefaultProtocols(c)
	}
	if c.MaxFlows <= 0 {
		c.MaxFlows = 1 << 18
	}
	if c.FlowTimeout <= 0 {
		c.FlowTimeout = 2 * time.Minute
	}
	if c.FlowInterval == 0 {
		c.FlowInterval = time.Minute
	}
	if c.MaxIPDatagrams == 0 {
		c.MaxIPDatagrams = 1024
	}
	if c.FragmentTimeout <= 0 {
		c.FragmentTimeout = 30 * time.Second
	}
	if c.MaxStreamBuffer <= 0 {
		c.MaxStreamBuffer = 2 << 20
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 256
	}
	if c.MaxDevices <= 0 {
		c.MaxDevices = 1 << 16
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Stats counts what a run saw.
type Stats struct {
	Packets         uint64  `json:"packets"`
	Bytes           uint64  `json:"bytes"` // captured frame lengths on the wire
	Events          uint64  `json:"events"`
	Anomalies       uint64  `json:"anomalies"`
	Flows           uint64  `json:"flows"`
	FlowsEvicted    uint64  `json:"flows_evicted"` // ended because the table was full
	FlowsExpired    uint64  `json:"flows_expired"` // ended because idle
	Undecoded       uint64  `json:"undecoded"`     // frames not IPv4/IPv6 or truncated
	Orphans         uint64  `json:"orphans"`       // bare TCP control segments of unknown flows
	Retransmissions uint64  `json:"retransmissions"`
	OutOfOrder      uint64  `json:"out_of_order"`
	Gaps            uint64  `json:"gaps"`              // holes skipped in TCP streams
	Devices         uint64  `json:"devices"`           // discovery announcements
	Fragments       uint64  `json:"fragments"`         // IP fragments
	Reassembled     uint64  `json:"reassembled"`       // IP datagrams reassembled from fragments
	FragsDropped    uint64  `json:"fragments_dropped"` // fragments of datagrams given up on (timeout, table full, overlap, cut by the capture)
	Filtered        uint64  `json:"filtered"`          // dropped by the capture filter
	Seconds         float64 `json:"seconds"`
}

// String renders the summary line scripts rely on:
// "sensor: packets=<N> bytes=<B> events=<E> seconds=<S> gbps=<G>".
func (s Stats) String() string {
	gbps := 0.0
	if s.Seconds > 0 {
		gbps = float64(s.Bytes) * 8 / s.Seconds / 1e9
	}
	return fmt.Sprintf("sensor: packets=%d bytes=%d events=%d seconds=%.3f gbps=%.3f",
		s.Packets, s.Bytes, s.Events, s.Seconds, gbps)
}

// Run reads the configured captures, decodes them and hands the events to
// the publisher, then returns what it counted. It stops early when ctx is
// done or publishing fails. An unreadable file is an error naming it; the
// files before it have been processed.
func Run(ctx context.Context, cfg Config) (Stats, error) {
	cfg = cfg.withDefaults()
	if cfg.OUI == nil && !cfg.DisableDiscovery {
		if o, err := LoadOUI(DefaultOUIFile); err == nil {
			cfg.OUI = o
		} else {
			cfg.Logger.Debug("no vendor names for MAC addresses", "err", err)
		}
	}
	flt, err := parseFilter(cfg.BPF)
	if err != nil {
		return Stats{}, err
	}
	pub := cfg.Publisher
	var nd *NDJSON
	if pub == nil && cfg.Output != nil {
		nd = NewNDJSON(cfg.Output)
		pub = nd
	}
	e := newEngine(ctx, cfg, pub)
	e.filter = flt
	start := time.Now()
	for _, name := range cfg.Pcaps {
		if err = e.readFile(ctx, name); err != nil {
			break
		}
	}
	if err == nil && cfg.Iface != "" {
		err = e.readLive(ctx, cfg.Iface)
	}
	e.finish("capture_end")
	if nd != nil {
		if ferr := nd.Flush(); ferr != nil && e.err == nil {
			e.err = ferr
		}
	}
	e.stats.Seconds = time.Since(start).Seconds()
	if err == nil && e.err != nil {
		err = fmt.Errorf("cannot publish events: %w", e.err)
	}
	return e.stats, err
}

// readFile processes one capture file. A classic pcap file is mapped in
// memory and its packets decoded in place; pcapng, gzipped pcap and files
// that cannot be mapped are read as a stream.
func (e *engine) readFile(ctx context.Context, name string) (err error) {
	fh, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("cannot open capture: %w", err)
	}
	defer fh.Close()
	var size int64
	if st, err := fh.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	if b, unmap, merr := mapFile(fh, size); merr == nil {
		defer unmap()
		if isPlainPcap(b) {
			r, herr := newMemPcap(b)
			if herr != nil {
				return fmt.Errorf("cannot read pcap %s: %w", name, herr)
			}
			// A file cut shorter while mapped faults on access: make
			// that an error rather than a crash.
			defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
			defer func() {
				if v := recover(); v != nil {
					if f, ok := v.(interface{ Addr() uintptr }); ok && inside(b, f.Addr()) {
						err = fmt.Errorf("cannot read capture %s: the file shrank while being read", name)
						return
					}
					panic(v)
				}
			}()
			return e.readPackets(ctx, name, r, func() int64 { return int64(r.off) }, size)
		}
	}
	cr := &countingReader{r: bufio.NewReaderSize(fh, 256<<10)}
	br := bufio.NewReaderSize(cr, 1<<16)
	magic, err := br.Peek(4)
	if err != nil {
		return fmt.Errorf("cannot read capture %s: %w", name, err)
	}
	var src source
	if string(magic) == "\x0a\x0d\x0d\x0a" {
		r, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{SkipUnknownVersion: true})
		if err != nil {
			return fmt.Errorf("cannot read pcapng %s: %w", name, err)
		}
		src = ngSource{r}
	} else {
		r, err := pcapgo.NewReader(br)
		if err != nil {
			return fmt.Errorf("cannot read pcap %s: %w", name, err)
		}
		src = pcapSource{r}
	}
	return e.readPackets(ctx, name, src, func() int64 { return cr.n }, size)
}

// inside reports whether addr points into b.
func inside(b []byte, addr uintptr) bool {
	if len(b) == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return addr >= start && addr-start < uintptr(len(b))
}

// readPackets processes the packets of src, read from file name; pos
// tells how far into the file (of size bytes) it has read.
func (e *engine) readPackets(ctx context.Context, name string, src source, pos func() int64, size int64) error {
	lastProgress := time.Now()
	for i := 0; ; i++ {
		data, ts, wire, link, err := src.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				e.cfg.Logger.Warn("capture truncated", "file", name, "packet", i+1)
				break
			}
			return fmt.Errorf("cannot read packet %d of %s: %w", i+1, name, err)
		}
		e.packet(link, data, ts, wire)
		if e.err != nil {
			return nil
		}
		if i&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if e.cfg.Progress != nil && time.Since(lastProgress) > 500*time.Millisecond {
				lastProgress = time.Now()
				progress(e.cfg.Progress, name, pos(), size, e.stats.Packets)
			}
		}
	}
	e.finish("capture_end")
	if e.cfg.Progress != nil {
		progress(e.cfg.Progress, name, size, size, e.stats.Packets)
		fmt.Fprintln(e.cfg.Progress)
	}
	return nil
}

func progress(w io.Writer, name string, done, size int64, pkts uint64) {
	pct := 100.0
	if size > 0 {
		pct = float64(done) * 100 / float64(size)
	}
	const width = 30
	n := int(pct / 100 * width)
	bar := make([]byte, width)
	for i := range bar {
		if i < n {
			bar[i] = '#'
		} else {
			bar[i] = '.'
		}
	}
	fmt.Fprintf(w, "\r%s [%s] %5.1f%% packets=%d", name, bar, pct, pkts)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// NDJSON is a Publisher writing one JSON event per line. Call Flush at
// the end.
type NDJSON struct {
	w   *bufio.Writer
	buf []byte
}

var _ Releaser = (*NDJSON)(nil)

// NewNDJSON returns a Publisher that writes to w.
func NewNDJSON(w io.Writer) *NDJSON {
	return &NDJSON{w: bufio.NewWriterSize(w, 1<<16)}
}

// PublishEvents implements Publisher.
func (n *NDJSON) PublishEvents(_ context.Context, events []vigil.Event) error {
	for i := range events {
		var err error
		n.buf, err = events[i].AppendJSON(n.buf[:0], true)
		if err != nil {
			return fmt.Errorf("cannot encode event %d (%s): %w", i, events[i].Kind, err)
		}
		n.buf = append(n.buf, '\n')
		if _, err := n.w.Write(n.buf); err != nil {
			return fmt.Errorf("cannot write events: %w", err)
		}
	}
	return nil
}

// write writes the events of the sensor's batch, as PublishEvents
// writes them once made vigil.Events, without making their maps.
func (n *NDJSON) write(events []proto.Event) error {
	var err error
	if n.buf, err = appendLines(n.buf[:0], events); err != nil {
		return err
	}
	if _, err := n.w.Write(n.buf); err != nil {
		return fmt.Errorf("cannot write events: %w", err)
	}
	return nil
}

// appendLines appends events encoded as JSON, one per line.
func appendLines(b []byte, events []proto.Event) ([]byte, error) {
	for i := range events {
		var err error
		if b, err = events[i].AppendJSON(b); err != nil {
			return b, fmt.Errorf("cannot encode event %d (%s): %w", i, events[i].Kind, err)
		}
		b = append(b, '\n')
	}
	return b, nil
}

// ReleasesEvents implements Releaser: events are written out by the time
// PublishEvents returns.
func (n *NDJSON) ReleasesEvents() bool { return true }

// Flush writes what is buffered.
func (n *NDJSON) Flush() error { return n.w.Flush() }
