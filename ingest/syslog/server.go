package syslog

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus"
)

// Publisher takes events; bus.Bus is one. PublishEvents returns
// bus.ErrBackpressure (possibly wrapped) when it cannot take more now, in
// which case none of the events was taken: the server waits and offers
// them again.
type Publisher interface {
	PublishEvents(ctx context.Context, events []vigil.Event) error
}

var _ Publisher = (bus.Bus)(nil)

// Defaults of Options.
const (
	DefaultQueue      = 65536
	DefaultMaxMessage = 64 << 10
	DefaultBatch      = 1024
	DefaultBurst      = 1000
)

// Options configure a Server. Addresses left empty are not listened on.
type Options struct {
	// UDP, TCP and TLS are listen addresses ("0.0.0.0:514", ":6514").
	UDP, TCP, TLS string
	// TLSConfig is the TLS listener's configuration (its certificate).
	TLSConfig *tls.Config
	// Publisher receives the events. Required.
	Publisher Publisher
	// Clock stamps Received and runs the rate limits (default
	// vigil.SystemClock).
	Clock vigil.Clock
	// Location is the zone of RFC 3164 timestamps, which have none
	// (default UTC).
	Location *time.Location
	// Queue bounds the events parsed and not yet published (default
	// DefaultQueue). When it is full, TCP and TLS connections are not
	// read (the senders are pushed back) and UDP datagrams are dropped
	// and counted.
	Queue int
	// Rate is the messages per second each source address may send, with
	// bursts of Burst (default DefaultBurst); 0 is no limit. A TCP or TLS
	// sender over its rate is read more slowly; UDP messages over it are
	// dropped and counted.
	Rate  float64
	Burst int
	// MaxMessage bounds a message in bytes (default DefaultMaxMessage):
	// a longer UDP datagram is cut, a TCP or TLS connection sending a
	// longer frame is closed.
	MaxMessage int
	// Batch is the most events published at once (default DefaultBatch).
	Batch int
	// IdleTimeout closes TCP and TLS connections silent that long
	// (default 10 minutes).
	IdleTimeout time.Duration
	// Logger receives the server's logs (nil: none).
	Logger *slog.Logger
}

// Stats count what a Server did.
type Stats struct {
	Received    uint64 // messages parsed (UDP messages over their rate are only in RateLimited)
	Published   uint64 // events published
	Malformed   uint64 // RFC 5424 messages that broke the grammar (dropped)
	QueueFull   uint64 // UDP messages dropped because the queue was full
	RateLimited uint64 // UDP messages dropped over their source's rate
	Retries     uint64 // publishes retried after the bus pushed back
}

// Server receives syslog over UDP, TCP (octet counting or newline
// framing, RFC 6587) and TLS (RFC 5425), parses RFC 5424 and RFC 3164
// messages and publishes them as events of kind syslog. One goroutine
// publishes; each TCP or TLS connection has its reader.
type Server struct {
	o     Options
	log   *slog.Logger
	queue chan vigil.Event
	udp   net.PacketConn
	tcp   net.Listener
	tls   net.Listener

	limMu  sync.Mutex
	limits map[netip.Addr]*bucket

	received, published, malformed, queueFull, rateLimited, retries atomic.Uint64
}

// New checks opts and returns a server; Listen binds it.
func New(o Options) (*Server, error) {
	if o.Publisher == nil {
		return nil, errors.New("syslog: Options.Publisher is required")
	}
	if o.TLS != "" && o.TLSConfig == nil {
		return nil, errors.New("syslog: a TLS listener needs a TLSConfig")
	}
	if o.Clock == nil {
		o.Clock = vigil.SystemClock{}
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.MaxMessage <= 0 {
		o.MaxMessage = DefaultMaxMessage
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.Burst <= 0 {
		o.Burst = DefaultBurst
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 10 * time.Minute
	}
	if o.Rate < 0 {
		return nil, fmt.Errorf("syslog: rate %v: must not be negative", o.Rate)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{o: o, log: log.With("component", "syslog"), queue: make(chan vigil.Event, o.Queue),
		limits: map[netip.Addr]*bucket{}}, nil
}

// Listen binds the configured listeners.
func (s *Server) Listen() error {
	var err error
	if s.o.UDP != "" {
		if s.udp, err = net.ListenPacket("udp", s.o.UDP); err != nil {
			return fmt.Errorf("cannot listen for syslog on udp %s: %w", s.o.UDP, err)
		}
		if uc, ok := s.udp.(*net.UDPConn); ok {
			_ = uc.SetReadBuffer(8 << 20)
		}
	}
	if s.o.TCP != "" {
		if s.tcp, err = net.Listen("tcp", s.o.TCP); err != nil {
			s.Close()
			return fmt.Errorf("cannot listen for syslog on tcp %s: %w", s.o.TCP, err)
		}
	}
	if s.o.TLS != "" {
		if s.tls, err = tls.Listen("tcp", s.o.TLS, s.o.TLSConfig); err != nil {
			s.Close()
			return fmt.Errorf("cannot listen for syslog on tls %s: %w", s.o.TLS, err)
		}
	}
	return nil
}

// Addrs returns the bound addresses (nil for a listener not configured).
func (s *Server) Addrs() (udp, tcp, tlsAddr net.Addr) {
	if s.udp != nil {
		udp = s.udp.LocalAddr()
	}
	if s.tcp != nil {
		tcp = s.tcp.Addr()
	}
	if s.tls != nil {
		tlsAddr = s.tls.Addr()
	}
	return
}

// Close closes the listeners.
func (s *Server) Close() {
	if s.udp != nil {
		s.udp.Close()
	}
	if s.tcp != nil {
		s.tcp.Close()
	}
	if s.tls != nil {
		s.tls.Close()
	}
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{Received: s.received.Load(), Published: s.published.Load(), Malformed: s.malformed.Load(),
		QueueFull: s.queueFull.Load(), RateLimited: s.rateLimited.Load(), Retries: s.retries.Load()}
}

// Run serves until ctx ends (Listen first), then publishes what the queue
// holds and returns.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var readers sync.WaitGroup
	if s.udp != nil {
		readers.Add(1)
		go func() { defer readers.Done(); s.serveUDP(ctx) }()
	}
	for _, l := range []net.Listener{s.tcp, s.tls} {
		if l == nil {
			continue
		}
		transport := "tcp"
		if l == s.tls {
			transport = "tls"
		}
		readers.Add(1)
		go func() { defer readers.Done(); s.accept(ctx, l, transport, &readers) }()
	}
	go func() {
		<-ctx.Done()
		s.Close()
	}()
	done := make(chan struct{})
	go func() { readers.Wait(); close(done) }()
	return s.publish(ctx, done)
}

// publish takes events from the queue in batches until ctx ends, then
// publishes what the readers queued before they stopped.
func (s *Server) publish(ctx context.Context, done <-chan struct{}) error {
	batch := make([]vigil.Event, 0, s.o.Batch)
	for {
		select {
		case ev := <-s.queue:
			batch = append(batch, ev)
		case <-done:
			return s.drain(ctx, batch)
		}
		batch = s.fill(batch)
		if err := s.publishBatch(ctx, batch); err != nil {
			if ctx.Err() != nil {
				<-done
				return s.drain(ctx, batch)
			}
			return err
		}
		batch = batch[:0]
	}
}

// fill adds to batch what the queue holds, up to a batch.
func (s *Server) fill(batch []vigil.Event) []vigil.Event {
	for len(batch) < s.o.Batch {
		select {
		case ev := <-s.queue:
			batch = append(batch, ev)
		default:
			return batch
		}
	}
	return batch
}

// drainTimeout bounds the publishing of the queue at shutdown.
const drainTimeout = 10 * time.Second

// drain publishes batch and the queue at shutdown.
func (s *Server) drain(ctx context.Context, batch []vigil.Event) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	for {
		batch = s.fill(batch)
		if len(batch) == 0 {
			return nil
		}
		if err := s.publishBatch(dctx, batch); err != nil {
			return fmt.Errorf("cannot publish the %d syslog events queued at shutdown: %w", len(batch)+len(s.queue), err)
		}
		batch = batch[:0]
	}
}

// publishBatch publishes events, waiting and retrying while the bus
// pushes back (nothing is dropped: the queue fills and the TCP readers
// stop reading). Another error, or the end of ctx, is returned.
func (s *Server) publishBatch(ctx context.Context, events []vigil.Event) error {
	wait := 10 * time.Millisecond
	for {
		err := s.o.Publisher.PublishEvents(ctx, events)
		if err == nil {
			s.published.Add(uint64(len(events)))
			return nil
		}
		if !errors.Is(err, bus.ErrBackpressure) {
			return fmt.Errorf("cannot publish syslog events: %w", err)
		}
		s.retries.Add(1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

// bucket is a token bucket of one source address.
type bucket struct {
	tokens float64
	last   time.Time
}

// take takes a token for a message from addr, and returns how long to
// wait when there is none.
func (s *Server) take(addr netip.Addr) time.Duration {
	if s.o.Rate == 0 {
		return 0
	}
	now := s.o.Clock.Now()
	s.limMu.Lock()
	defer s.limMu.Unlock()
	b := s.limits[addr]
	if b == nil {
		if len(s.limits) >= 100_000 {
			// Forget idle sources (a spoofed UDP flood must not grow the map
			// without bound).
			for a, x := range s.limits {
				if now.Sub(x.last) > time.Minute {
					delete(s.limits, a)
				}
			}
		}
		b = &bucket{tokens: float64(s.o.Burst), last: now}
		s.limits[addr] = b
	}
	b.tokens = min(float64(s.o.Burst), b.tokens+now.Sub(b.last).Seconds()*s.o.Rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) / s.o.Rate * float64(time.Second))
}

// handle parses one message and queues its event; block says whether to
// wait for room (TCP, TLS) or drop (UDP). It returns false when ctx ended.
func (s *Server) handle(ctx context.Context, msg []byte, peer netip.AddrPort, transport string, block bool) bool {
	s.received.Add(1)
	now := s.o.Clock.Now()
	m, err := Parse(msg, now, s.o.Location)
	if err != nil {
		s.malformed.Add(1)
		s.log.Debug("malformed syslog message", "peer", peer.String(), "err", err)
		return true
	}
	ev := Event(&m, peer, transport, now)
	if !block {
		select {
		case s.queue <- ev:
		default:
			s.queueFull.Add(1)
		}
		return true
	}
	select {
	case s.queue <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Server) serveUDP(ctx context.Context) {
	buf := make([]byte, 65536)
	for {
		n, addr, err := s.udp.ReadFrom(buf)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.log.Warn("cannot read syslog over udp", "err", err)
			}
			return
		}
		var peer netip.AddrPort
		if ua, ok := addr.(*net.UDPAddr); ok {
			peer = ua.AddrPort()
			peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
		}
		if s.take(peer.Addr()) > 0 {
			s.rateLimited.Add(1)
			continue
		}
		s.handle(ctx, buf[:min(n, s.o.MaxMessage)], peer, "udp", false)
	}
}

func (s *Server) accept(ctx context.Context, l net.Listener, transport string, readers *sync.WaitGroup) {
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.log.Warn("cannot accept a syslog connection", "transport", transport, "err", err)
			}
			return
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			if err := s.serveConn(ctx, c, transport); err != nil && ctx.Err() == nil {
				s.log.Info("syslog connection closed", "transport", transport, "peer", c.RemoteAddr().String(), "err", err)
			}
		}()
	}
}

// serveConn reads the frames of one connection: each either octet
// counted ("LEN SP MSG", RFC 6587 §3.4.1) or ending with LF (§3.4.2),
// told apart by its first byte (a digit, or the '<' of a PRI).
func (s *Server) serveConn(ctx context.Context, c net.Conn, transport string) error {
	var peer netip.AddrPort
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		peer = ta.AddrPort()
		peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	}
	br := bufio.NewReaderSize(c, 64<<10)
	var long []byte
	for {
		if err := c.SetReadDeadline(time.Now().Add(s.o.IdleTimeout)); err != nil {
			return err
		}
		first, err := br.Peek(1)
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		var msg []byte
		if first[0] >= '1' && first[0] <= '9' {
			lenText, err := br.ReadSlice(' ')
			if err != nil {
				return fmt.Errorf("octet counting: no space after the length: %w", err)
			}
			n, err := strconv.Atoi(string(lenText[:len(lenText)-1]))
			if err != nil || n <= 0 {
				return fmt.Errorf("octet counting: %q is not a length", lenText)
			}
			if n > s.o.MaxMessage {
				return fmt.Errorf("octet counting: a message of %d bytes, more than %d", n, s.o.MaxMessage)
			}
			if n <= br.Size() {
				if msg, err = br.Peek(n); err != nil {
					return err
				}
				if err := s.frame(ctx, msg, peer, transport); err != nil {
					return err
				}
				_, _ = br.Discard(n)
				continue
			}
			long = append(long[:0], make([]byte, n)...)
			if _, err := io.ReadFull(br, long); err != nil {
				return err
			}
			msg = long
		} else {
			line, err := br.ReadSlice('\n')
			switch {
			case err == bufio.ErrBufferFull:
				long = append(long[:0], line...)
				for err == bufio.ErrBufferFull {
					line, err = br.ReadSlice('\n')
					long = append(long, line...)
					if len(long) > s.o.MaxMessage {
						return fmt.Errorf("a line longer than %d bytes", s.o.MaxMessage)
					}
				}
				if err != nil && !(err == io.EOF && len(long) > 0) {
					return err
				}
				msg = long
			case err == io.EOF && len(line) > 0:
				msg = line // the last message, without its LF
			case err != nil:
				return err
			default:
				msg = line
			}
			if len(msg) > s.o.MaxMessage+1 {
				return fmt.Errorf("a line longer than %d bytes", s.o.MaxMessage)
			}
		}
		if err := s.frame(ctx, msg, peer, transport); err != nil {
			return err
		}
	}
}

// frame handles one message of a stream, after waiting for its source's
// rate.
func (s *Server) frame(ctx context.Context, msg []byte, peer netip.AddrPort, transport string) error {
	if len(msg) == 0 || (len(msg) == 1 && msg[0] == '\n') {
		return nil
	}
	for {
		d := s.take(peer.Addr())
		if d == 0 {
			break
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	if !s.handle(ctx, msg, peer, transport, true) {
		return ctx.Err()
	}
	return nil
}
