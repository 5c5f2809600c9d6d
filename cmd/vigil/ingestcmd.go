package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/ingest"
	"github.com/vigil-iot/vigil/ingest/suricata"
	"github.com/vigil-iot/vigil/ingest/syslog"
	"github.com/vigil-iot/vigil/ingest/weblog"
	"github.com/vigil-iot/vigil/ingest/zeek"
	"github.com/vigil-iot/vigil/proto"
)

// ingestFormats are the formats vigil ingest reads.
var ingestFormats = []string{"zeek", "suricata", "syslog", "weblog", "cloudtrail", "azure", "gcp", "thingsboard", "ndjson"}

func newIngestCmd() *cobra.Command {
	o := &ctlOptions{}
	var format, output string
	var follow bool
	cmd := &cobra.Command{
		Use:   "ingest FILE... [--format zeek|suricata|syslog|weblog|cloudtrail|azure|gcp|thingsboard|ndjson] [--follow] [--output FILE|- | --server URL --token T]",
		Short: "Convert network monitors' logs (Zeek, Suricata EVE) into Vigil events, or stream them to a server",
		Long: `Read log files of the network monitors already deployed and turn them into the events
Vigil's own sensor emits for the same traffic (docs/sources.md):

  zeek      Zeek logs, TSV with their # headers or JSON lines: conn, dns, http, ssl, ssh,
            mqtt_connect, mqtt_publish, mqtt_subscribe, modbus, dnp3, notice, weird
            (other logs, files or x509, are skipped with a note)
  suricata  Suricata EVE JSON: alert, flow, dns, http, tls, mqtt, modbus, anomaly
  syslog    syslog messages (RFC 5424 or RFC 3164), one a line, as a relay writes them
            with their <PRI>; RFC 3164 times without a year are read in UTC
  weblog    web server and reverse proxy access logs: the common and combined formats of
            nginx and Apache httpd, or JSON lines with nginx's variable names
  cloudtrail  AWS CloudTrail: log files ({"Records":[...]}, .json.gz as S3 holds them),
            records one a line or pretty-printed, EventBridge envelopes
  azure     Azure resource logs: Activity log, Entra ID sign-in and audit logs, IoT Hub
            ({"records":[...]} as diagnostic settings export them, or one a line)
  gcp       GCP Cloud Audit Logs: LogEntry records one a line (a sink's Cloud Storage
            export), gcloud logging read --format=json arrays, Pub/Sub push envelopes
  thingsboard  ThingsBoard audit log: pages of GET /api/audit/logs ({"data":[...]}),
            arrays or entries one a line; attribute updates of devices become twin events
  ndjson    Vigil events, one JSON object a line (checked and passed on)

The format is guessed from each file's first line when --format is omitted. A FILE of -
is standard input; names ending in .gz are decompressed. Events go to --output as NDJSON
(- for stdout), for example into vigil detect:

  vigil ingest --format zeek conn.log --output - | vigil detect --input -

or to a Vigil server (--server, with a --token that may ingest), waiting while it pushes
back. With --follow the files are read as they grow, as tail -F does (a file replaced at its
name, as by log rotation, is read from its start), and events are sent within a second,
until the command is interrupted. Bad records are reported on stderr (the first 10) and skipped; the exit status is 1
when there were any. The last line on stderr is
  ingest: files=<F> records=<R> events=<E> skipped=<S> bad=<B> seconds=<T>`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "" && !contains(ingestFormats, format) {
				return fmt.Errorf("--format %q: want one of %s", format, strings.Join(ingestFormats, ", "))
			}
			toServer := cmd.Flags().Changed("server")
			if toServer == (output != "") {
				return fmt.Errorf("give exactly one of --output and --server")
			}
			var sink ingestSink
			if toServer {
				c, err := o.client()
				if err != nil {
					return err
				}
				defer c.Close()
				sink = &serverSink{p: &serverPublisher{c: c}}
			} else {
				w := cmd.OutOrStdout()
				if output != "-" {
					f, err := os.Create(output)
					if err != nil {
						return fmt.Errorf("cannot create output: %w", err)
					}
					defer f.Close()
					w = f
				}
				bw := bufio.NewWriterSize(w, 1<<16)
				sink = &writerSink{w: bw}
			}
			in := &ingestRun{sink: sink, log: cmd.ErrOrStderr(), format: format}
			start := time.Now()
			var err error
			if follow {
				err = in.followFiles(cmd.Context(), args)
			} else {
				err = in.files(cmd.Context(), args)
			}
			// The last events go out even after an interrupt (--follow).
			fctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), time.Minute)
			defer cancel()
			if ferr := sink.flush(fctx); err == nil {
				err = ferr
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "ingest: files=%d records=%d events=%d skipped=%d bad=%d seconds=%.3f\n",
				in.nfiles, in.records, in.events, in.skipped, in.bad, time.Since(start).Seconds())
			if err != nil {
				return err
			}
			if in.bad > 0 {
				return exitCode(1)
			}
			return nil
		},
	}
	o.addConnFlags(cmd)
	cmd.Flags().StringVar(&format, "format", "", "input format: "+strings.Join(ingestFormats, ", ")+" (default: guessed per file)")
	cmd.Flags().StringVar(&output, "output", "", "write events as NDJSON to this file (- for stdout)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "read the files as they grow (tail -F), until interrupted")
	return cmd
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ingestSink receives the converted events as NDJSON lines.
type ingestSink interface {
	// write takes n events as JSON lines; the sink may keep lines only
	// until it returns.
	write(ctx context.Context, lines []byte, n int) error
	flush(ctx context.Context) error
}

// writerSink writes the lines to a file or stdout.
type writerSink struct{ w *bufio.Writer }

func (s *writerSink) write(_ context.Context, lines []byte, _ int) error {
	if _, err := s.w.Write(lines); err != nil {
		return fmt.Errorf("cannot write output: %w", err)
	}
	return nil
}

func (s *writerSink) flush(context.Context) error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("cannot write output: %w", err)
	}
	return nil
}

// serverSink posts the lines to the server in batches, as vigil sensor
// does (serverPublisher: it waits and retries while the server pushes
// back).
type serverSink struct {
	p   *serverPublisher
	buf []byte
	n   int
}

// Bounds of one batch posted to the server.
const (
	ingestBatchEvents = 2000
	ingestBatchBytes  = 1 << 20
)

func (s *serverSink) write(ctx context.Context, lines []byte, n int) error {
	s.buf = append(s.buf, lines...)
	s.n += n
	if s.n >= ingestBatchEvents || len(s.buf) >= ingestBatchBytes {
		return s.flush(ctx)
	}
	return nil
}

func (s *serverSink) flush(ctx context.Context) error {
	if s.n == 0 {
		return nil
	}
	if err := s.p.PublishLines(ctx, s.buf, s.n); err != nil {
		return err // kept for the next flush
	}
	s.buf, s.n = s.buf[:0], 0
	return nil
}

// ingestRun converts files into the sink and counts.
type ingestRun struct {
	sink   ingestSink
	log    io.Writer
	format string
	// follow: the files are followed (followFiles): events are handed to
	// the sink as soon as they are read.
	follow bool

	nfiles, records, events, skipped, bad int

	arena proto.FieldArena
	evs   []proto.Event
	lines []byte
}

// maxReported bounds the bad records reported on stderr.
const maxReported = 10

func (in *ingestRun) files(ctx context.Context, names []string) error {
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := in.file(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// openLog opens a log file, - for stdin, decompressing .gz.
func openLog(name string) (io.ReadCloser, error) {
	var f io.ReadCloser = io.NopCloser(os.Stdin)
	if name != "-" {
		fh, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("cannot open log: %w", err)
		}
		f = fh
	}
	if !strings.HasSuffix(name, ".gz") {
		return f, nil
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot read %s: %w", name, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, f}, nil
}

// guessFormat names the format of a log from its first lines.
func guessFormat(head []byte) (string, error) {
	for _, l := range bytes.Split(head, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		switch {
		case bytes.HasPrefix(l, []byte("#separator")) || bytes.HasPrefix(l, []byte("#fields")) || bytes.HasPrefix(l, []byte("#path")):
			return "zeek", nil
		case l[0] == '#':
			continue
		case l[0] == '<' && len(l) > 2 && l[1] >= '0' && l[1] <= '9':
			return "syslog", nil
		case l[0] == '[' && isGCP([]byte("["), head):
			return "gcp", nil
		case l[0] == '{':
			switch {
			case isCloudTrail(l, head):
				return "cloudtrail", nil
			case isAzure(l, head):
				return "azure", nil
			case isGCP(l, head):
				return "gcp", nil
			case isThingsBoard(l, head):
				return "thingsboard", nil
			case bytes.Contains(l, []byte(`"event_type":`)):
				return "suricata", nil
			case bytes.Contains(l, []byte(`"id.orig_h":`)) || bytes.Contains(l, []byte(`"_path":`)):
				return "zeek", nil
			case bytes.Contains(l, []byte(`"kind":`)):
				return "ndjson", nil
			case bytes.Contains(l, []byte(`"remote_addr":`)) || bytes.Contains(l, []byte(`"request_uri":`)):
				return "weblog", nil
			}
		default:
			if _, err := weblog.Parse(l); err == nil {
				return "weblog", nil
			}
		}
		break
	}
	return "", errors.New("cannot guess its format from its first line: give --format")
}

func (in *ingestRun) file(ctx context.Context, name string) error {
	format := in.format
	var f io.ReadCloser
	var err error
	if in.follow && name != "-" {
		if format == "" {
			// A followed file's head is read once to guess its format:
			// reading it through the follower would wait for 16 KiB.
			head := make([]byte, 16<<10)
			fh, err := os.Open(name)
			if err != nil {
				return fmt.Errorf("cannot open log: %w", err)
			}
			n, _ := io.ReadFull(fh, head)
			fh.Close()
			if format, err = guessFormat(head[:n]); err != nil {
				return fmt.Errorf("%s: %w (an empty file needs --format)", name, err)
			}
		}
		f, err = openFollow(ctx, name)
	} else {
		f, err = openLog(name)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	if format == "" {
		head, _ := br.Peek(16 << 10)
		if format, err = guessFormat(head); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	in.nfiles++
	switch format {
	case "ndjson":
		return in.ndjson(ctx, name, br)
	case "syslog":
		return in.syslog(ctx, name, br)
	case "cloudtrail":
		return in.cloudtrail(ctx, name, br)
	case "azure":
		return in.azure(ctx, name, br)
	case "gcp":
		return in.gcp(ctx, name, br)
	case "thingsboard":
		return in.thingsboard(ctx, name, br)
	case "weblog":
		return in.eachLine(ctx, name, br, func(l []byte) (vigil.Event, error) {
			r, err := weblog.Parse(l)
			if err != nil {
				return vigil.Event{}, err
			}
			return weblog.Event(&r, ""), nil
		})
	}
	var next func([]proto.Event) ([]proto.Event, error)
	var stats func() (records, skipped int)
	switch format {
	case "zeek":
		path := ""
		if name != "-" {
			path = zeek.PathOf(name)
		}
		r := zeek.NewReader(br, zeek.Options{Name: name, Path: path, Arena: &in.arena})
		next = r.Next
		stats = func() (int, int) { st := r.Stats(); return st.Records, st.Skipped }
	case "suricata":
		r := suricata.NewReader(br, suricata.Options{Name: name, Arena: &in.arena})
		next = r.Next
		stats = func() (int, int) { st := r.Stats(); return st.Records, st.Skipped }
	}
	defer func() {
		r, s := stats()
		in.records += r
		in.skipped += s
	}()
	for {
		in.evs, err = next(in.evs)
		if len(in.evs) >= 512 || (err != nil || in.follow) && len(in.evs) > 0 {
			wctx := ctx
			if err != nil {
				// The end of a followed file comes with the end of ctx:
				// its last events still go out.
				wctx = context.WithoutCancel(ctx)
			}
			if werr := in.flushEvents(wctx); werr != nil {
				return werr
			}
		}
		switch {
		case err == nil:
		case err == io.EOF:
			return nil
		case errors.Is(err, zeek.ErrUnsupported):
			fmt.Fprintf(in.log, "skipping %v\n", err)
			in.nfiles--
			return nil
		case errors.Is(err, zeek.ErrHeader):
			in.reportBad(fmt.Errorf("%w (the rest of the file is skipped)", err))
			return nil
		case errors.As(err, new(*zeek.RecordError)) || errors.As(err, new(*suricata.RecordError)):
			in.reportBad(err)
		default:
			return err
		}
	}
}

func (in *ingestRun) reportBad(err error) {
	in.bad++
	if in.bad <= maxReported {
		fmt.Fprintf(in.log, "bad record: %v\n", err)
	}
}

// flushEvents encodes the pending events and hands them to the sink.
func (in *ingestRun) flushEvents(ctx context.Context) error {
	in.lines = in.lines[:0]
	for i := range in.evs {
		var err error
		if in.lines, err = in.evs[i].AppendJSON(in.lines); err != nil {
			return fmt.Errorf("cannot encode event: %w", err)
		}
		in.lines = append(in.lines, '\n')
	}
	n := len(in.evs)
	in.events += n
	in.evs = in.evs[:0]
	err := in.sink.write(ctx, in.lines, n)
	in.arena.Reset()
	return err
}

// syslog converts syslog messages, one a line.
func (in *ingestRun) syslog(ctx context.Context, name string, br *bufio.Reader) error {
	return in.eachLine(ctx, name, br, func(l []byte) (vigil.Event, error) {
		now := time.Now()
		m, err := syslog.Parse(l, now, time.UTC)
		if err != nil {
			return vigil.Event{}, err
		}
		ev := syslog.Event(&m, netip.AddrPort{}, "file", now)
		ev.Received, ev.Provenance = time.Time{}, ""
		return ev, nil
	})
}

// ndjson checks Vigil events, one a line, and passes them on.
func (in *ingestRun) ndjson(ctx context.Context, name string, br *bufio.Reader) error {
	return in.eachLine(ctx, name, br, func(l []byte) (vigil.Event, error) {
		var ev vigil.Event
		if err := json.Unmarshal(l, &ev); err != nil {
			return ev, err
		}
		if ev.Kind == "" {
			return ev, errors.New("kind: missing")
		}
		ingest.LiftNetwork(&ev)
		return ev, nil
	})
}

// eachLine converts a file of one record a line with conv and passes the
// events on.
func (in *ingestRun) eachLine(ctx context.Context, name string, br *bufio.Reader, conv func([]byte) (vigil.Event, error)) error {
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	line := 0
	var batch []byte
	n := 0
	for sc.Scan() {
		line++
		l := bytes.TrimSpace(sc.Bytes())
		if len(l) == 0 {
			continue
		}
		in.records++
		ev, err := conv(l)
		if err != nil {
			in.reportBad(fmt.Errorf("%s:%d: %v", name, line, err))
			continue
		}
		before := len(batch)
		if batch, err = ev.AppendJSON(batch, true); err != nil {
			batch = batch[:before]
			in.reportBad(fmt.Errorf("%s:%d: %v", name, line, err))
			continue
		}
		batch = append(batch, '\n')
		n++
		if n >= 512 {
			if err := in.sink.write(ctx, batch, n); err != nil {
				return err
			}
			in.events += n
			batch, n = batch[:0], 0
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("cannot read %s: %w", name, err)
	}
	in.events += n
	if n == 0 {
		return nil
	}
	return in.sink.write(ctx, batch, n)
}

// followFiles follows each file in a goroutine of its own until ctx ends,
// the sink flushed every second so that events are not held back.
func (in *ingestRun) followFiles(ctx context.Context, names []string) error {
	ls := &lockedSink{s: in.sink}
	runs := make([]*ingestRun, len(names))
	g, gctx := errgroup.WithContext(ctx)
	for i, name := range names {
		r := &ingestRun{sink: ls, log: in.log, format: in.format, follow: true}
		runs[i] = r
		g.Go(func() error { return r.file(gctx, name) })
	}
	done := make(chan struct{})
	flushed := make(chan error, 1)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				flushed <- nil
				return
			case <-t.C:
				if err := ls.flush(gctx); err != nil {
					flushed <- err
					return
				}
			}
		}
	}()
	err := g.Wait()
	close(done)
	if ferr := <-flushed; err == nil {
		err = ferr
	}
	for _, r := range runs {
		in.nfiles += r.nfiles
		in.records += r.records
		in.events += r.events
		in.skipped += r.skipped
		in.bad += r.bad
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil // interrupted: the normal end of --follow
	}
	return err
}

// lockedSink serializes the files' writes to one sink.
type lockedSink struct {
	mu sync.Mutex
	s  ingestSink
}

func (l *lockedSink) write(ctx context.Context, lines []byte, n int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.write(ctx, lines, n)
}

func (l *lockedSink) flush(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.flush(ctx)
}

// followPoll is how often a followed file that has no more data is
// looked at again.
const followPoll = 250 * time.Millisecond

// follower reads a file as it grows: at its end it waits for more, and
// when another file takes its name (rotation) or it shrinks
// (truncation), it goes on with the new one from its start. Read returns
// io.EOF only once ctx ends.
type follower struct {
	ctx  context.Context
	name string
	f    *os.File
	off  int64
}

func openFollow(ctx context.Context, name string) (io.ReadCloser, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("cannot open log: %w", err)
	}
	return &follower{ctx: ctx, name: name, f: f}, nil
}

func (w *follower) Read(p []byte) (int, error) {
	for {
		n, err := w.f.Read(p)
		w.off += int64(n)
		if n > 0 {
			return n, nil
		}
		if err != nil && err != io.EOF {
			return 0, err
		}
		// At the end: rotated or truncated?
		if cur, err := os.Stat(w.name); err == nil {
			old, ferr := w.f.Stat()
			if ferr == nil && (!os.SameFile(cur, old) || cur.Size() < w.off) {
				if nf, err := os.Open(w.name); err == nil {
					if os.SameFile(cur, old) {
						// Truncated in place: from the start.
						nf.Close()
						if _, err := w.f.Seek(0, io.SeekStart); err != nil {
							return 0, err
						}
					} else {
						w.f.Close()
						w.f = nf
					}
					w.off = 0
					continue
				}
			}
		}
		t := time.NewTimer(followPoll)
		select {
		case <-w.ctx.Done():
			t.Stop()
			return 0, io.EOF
		case <-t.C:
		}
	}
}

func (w *follower) Close() error { return w.f.Close() }
