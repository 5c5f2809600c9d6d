package natsbus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// embedded holds the embedded NATS server, which the bus restarts in
// place when its JetStream store hit a write error (see Bus.watch). The
// client connects to it in process through InProcessConn, so it reconnects
// to the new server by itself.
type embedded struct {
	mu     sync.Mutex
	s      *server.Server // nil while restarting, or when a restart failed
	cfg    Config         // with the listen port the first server got
	closed bool
}

// InProcessConn connects the client to the current server; it implements
// nats.InProcessConnProvider.
func (e *embedded) InProcessConn() (net.Conn, error) {
	e.mu.Lock()
	s := e.s
	e.mu.Unlock()
	if s == nil {
		return nil, errors.New("the embedded NATS server is restarting")
	}
	return s.InProcessConn()
}

func (e *embedded) server() *server.Server {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.s
}

// WriteErr tells whether the bus can take events now: it returns why not,
// or nil. It is not nil while the embedded server reports a stream it
// cannot write (a full or unwritable disk: nats-server keeps that error
// until the server restarts, which the bus does by itself once the disk
// has room again), while the server is restarting, while the client is
// not connected, and after a publish failed (other than for backpressure)
// until a later publish succeeds.
func (b *Bus) WriteErr() error {
	if b.emb != nil {
		s := b.emb.server()
		if s == nil {
			// A failed restart is logged with its details; it is retried.
			return errors.New("the embedded NATS server is restarting")
		}
		// The details (paths in the store dir) go to the log, not to
		// whoever asks /readyz.
		if writeFault, err := serverHealth(s); writeFault {
			return errors.New("the embedded NATS server cannot write its store (full or unwritable disk?); it restarts once the disk takes a write")
		} else if err != nil {
			return errors.New("the embedded NATS server is not healthy (see the log)")
		}
	}
	if st := b.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("not connected to NATS (%s)", st)
	}
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	if b.pubErr != nil {
		return fmt.Errorf("last publish failed: %w", b.pubErr)
	}
	return nil
}

// serverHealth returns whether the embedded server reports a write fault,
// and its own health error. A write fault is one that a restart clears
// once the disk takes writes again: a stream with a write error
// (nats-server keeps it until it restarts), or JetStream disabled
// (nats-server disables it on a permission error while writing).
func serverHealth(s *server.Server) (writeFault bool, err error) {
	h := s.Healthz(&server.HealthzOptions{Details: true})
	if len(h.Errors) == 0 {
		if h.StatusCode != 0 && h.StatusCode != 200 {
			return false, fmt.Errorf("embedded NATS server: %s", h.Status)
		}
		return false, nil
	}
	var msgs []string
	for _, e := range h.Errors {
		msgs = append(msgs, e.Error)
		switch e.Type {
		case server.HealthzErrorJetStream:
			writeFault = true
		case server.HealthzErrorStream:
			// The only stream error nats-server reports besides "could
			// not be recovered" is the write error.
			if strings.Contains(e.Error, "write error") {
				writeFault = true
			}
		}
	}
	return writeFault, fmt.Errorf("embedded NATS server: %s", strings.Join(msgs, "; "))
}

// publishStart returns the generation a publish starts in, for
// publishDone.
func (b *Bus) publishStart() uint64 {
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	return b.pubGen
}

// publishDone records the outcome of a publish that started in generation
// gen: a failure (other than backpressure or the caller giving up) makes
// WriteErr report it and wakes the watchdog; a success clears a failure
// recorded before it started.
func (b *Bus) publishDone(gen uint64, err error) {
	if err == nil {
		b.pubMu.Lock()
		if b.pubErr != nil && b.pubErrGen <= gen { // recorded before this publish started
			b.pubErr = nil
		}
		b.pubMu.Unlock()
		return
	}
	if isBackpressure(err) || errors.Is(err, context.Canceled) {
		return
	}
	b.pubMu.Lock()
	b.pubErr = err
	b.pubGen++
	b.pubErrGen = b.pubGen
	b.pubMu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// watch checks the embedded server every HealthInterval (and at once
// after a failed publish) and restarts it when it has a write error and
// a probe write in its store dir succeeds, with a growing delay between
// restarts that do not help.
func (b *Bus) watch(ctx context.Context) {
	t := time.NewTicker(b.cfg.HealthInterval)
	defer t.Stop()
	var next time.Time // no restart before
	delay := b.cfg.HealthInterval
	waiting := false // the disk had no room at the last check
	warned := false  // an error other than a write fault was logged
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-b.kick:
		}
		writeFault, err := true, errors.New("no server after a failed restart")
		if s := b.emb.server(); s != nil {
			writeFault, err = serverHealth(s)
		}
		if err == nil {
			delay, waiting, warned = b.cfg.HealthInterval, false, false
			continue
		}
		if !writeFault {
			if !warned {
				b.log.Error("embedded NATS server is not healthy; not a write error, so it is not restarted", "err", err)
			}
			warned = true
			continue
		}
		if time.Now().Before(next) {
			continue
		}
		if perr := probeWrite(b.cfg.DataDir); perr != nil {
			if !waiting {
				b.log.Error("embedded NATS server cannot write; it restarts once its disk has room", "err", err, "probe", perr)
			}
			waiting = true
			continue
		}
		waiting = false
		b.log.Warn("restarting the embedded NATS server after a write error; its disk has room again", "err", err)
		if rerr := b.restart(ctx); rerr != nil {
			b.log.Error("cannot restart the embedded NATS server", "err", rerr, "retry_in", delay)
		} else {
			b.log.Info("embedded NATS server restarted")
		}
		next = time.Now().Add(delay)
		delay = min(2*delay, time.Minute)
	}
}

// probeWrite writes and syncs 1 MiB in a new file in dir, then removes
// it: it tells whether the disk has room again.
func probeWrite(dir string) error {
	f, err := os.CreateTemp(dir, ".vigil-probe-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(make([]byte, 1<<20))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// restart stops the embedded server, starts a new one on the same store
// dir and address and waits for the client to reconnect. Messages acknowledged before are in
// the store dir; publishes in flight fail and are retried by their
// callers; consumers fetch again and recreate their consumers.
func (b *Bus) restart(ctx context.Context) error {
	e := b.emb
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	old := e.s
	e.s = nil
	e.mu.Unlock()
	if old != nil {
		old.Shutdown()
		old.WaitForShutdown()
	}
	s, err := startEmbedded(e.cfg, b.log)
	e.mu.Lock()
	if err != nil {
		e.mu.Unlock()
		return err
	}
	if e.closed {
		e.mu.Unlock()
		s.Shutdown()
		s.WaitForShutdown()
		return nil
	}
	e.s = s
	e.mu.Unlock()
	return b.afterRestart(ctx)
}

// afterRestart waits for the client to reconnect, clears the publish
// failure and makes sure the streams exist. The new server recovers the
// streams and consumers from the store dir; creating them again as Open
// does could fail where it is not needed (nats-server counts an existing
// stream's limit twice against the disk space it allows), so Open's setup
// runs only when a stream is missing.
func (b *Bus) afterRestart(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for !b.nc.IsConnected() {
		if !sleep(ctx, 50*time.Millisecond) {
			return fmt.Errorf("cannot reconnect to the restarted NATS server: %w", ctx.Err())
		}
	}
	b.pubMu.Lock()
	b.pubErr = nil
	b.pubMu.Unlock()
	for _, name := range []string{b.eventsStream, b.alertsStream} {
		_, err := b.js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return b.setup(ctx)
		}
		if err != nil {
			return fmt.Errorf("cannot read stream %s: %w", name, err)
		}
	}
	return nil
}

// listenConfig returns cfg with the port the server s listens on, so that
// a restarted server listens on the same one.
func listenConfig(cfg Config, s *server.Server) Config {
	if cfg.ListenAddr == "" {
		return cfg
	}
	if a, ok := s.Addr().(*net.TCPAddr); ok {
		host, _, err := net.SplitHostPort(cfg.ListenAddr)
		if err == nil {
			cfg.ListenAddr = net.JoinHostPort(host, strconv.Itoa(a.Port))
		}
	}
	return cfg
}

var _ nats.InProcessConnProvider = (*embedded)(nil)
