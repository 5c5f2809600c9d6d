package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil"
	vagent "github.com/vigil-iot/vigil/agent"
	"github.com/vigil-iot/vigil/agent/httpc"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/enroll"
	"github.com/vigil-iot/vigil/pki"
	"github.com/vigil-iot/vigil/sensor"
)

func newSensorCmd() *cobra.Command {
	o := &ctlOptions{}
	var (
		cfg     sensor.Config
		output  string
		ouiFile string
		state   string
		server  bool
	)
	cmd := &cobra.Command{
		Use:   "sensor (--pcap FILE... | --iface IF) [--bpf EXPR] [--server URL [--state DIR] | --output FILE.jsonl]",
		Short: "Passive IoT protocol monitoring from capture files or a live interface",
		Long: `Decode the IoT protocols in capture files (pcap, pcapng) or on a live interface
(AF_PACKET, pure Go, needs CAP_NET_RAW): MQTT, CoAP, AMQP, DDS/RTPS, Modbus/TCP, Zigbee,
DNS, HTTP, TLS ClientHello, plus flow records and devices discovered on the wire.

Events go to an NDJSON file (--output, - for stdout) with no server at all, or to a Vigil
server. A sensor enrolls with the server like an agent, once:

  vigil ctl enroll-token create --class sensor --ttl 1h    (an admin token)
  vigil sensor enroll --server URL --token T --ca ca.crt    (on the sensor)

and then streams its events over mutual TLS with the certificate kept in --state
(--server defaults to the server it enrolled with). A bearer --token with the ingest
permission works too, for a sensor that is not enrolled.`,
		// The files after --pcap are its arguments too: a shell glob
		// (--pcap *.pcap) expands to several words after one flag.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && !cmd.Flags().Changed("pcap") {
				return fmt.Errorf("unexpected argument %q: capture files follow --pcap", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.Pcaps = append(cfg.Pcaps, args...)
			if len(cfg.Pcaps) == 0 && cfg.Iface == "" {
				return fmt.Errorf("give capture files (--pcap) or an interface (--iface)")
			}
			id, idErr := vagent.LoadIdentity(state)
			server = cmd.Flags().Changed("server") || (output == "" && idErr == nil)
			if server == (output != "") {
				return fmt.Errorf("give exactly one of --server and --output (or enroll first: vigil sensor enroll)")
			}
			if ouiFile != "" {
				oui, err := sensor.LoadOUI(ouiFile)
				if err != nil {
					return err
				}
				cfg.OUI = oui
			}
			sensorGC()
			cfg.Logger = newLogger(cmd.ErrOrStderr(), "warn")
			if len(cfg.Pcaps) > 0 {
				cfg.Progress = cmd.ErrOrStderr()
			}
			if server {
				c, err := sensorClient(cmd, o, id, idErr, state)
				if err != nil {
					return err
				}
				defer c.Close()
				cfg.Publisher = &serverPublisher{c: c}
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
				defer bw.Flush()
				cfg.Output = bw
			}
			st, err := sensor.Run(cmd.Context(), cfg)
			fmt.Fprintf(cmd.ErrOrStderr(), "\n%s\n", st)
			return err
		},
	}
	o.addConnFlags(cmd)
	cmd.PersistentFlags().StringVar(&state, "state", envOr("VIGIL_SENSOR_STATE", "/var/lib/vigil-sensor"), "directory of the sensor's enrolled identity ($VIGIL_SENSOR_STATE)")
	cmd.AddCommand(newSensorEnrollCmd(o, &state))
	f := cmd.Flags()
	f.StringSliceVar(&cfg.Pcaps, "pcap", nil, "capture files (pcap or pcapng): several after one --pcap, or --pcap repeated")
	f.StringVar(&cfg.Iface, "iface", "", "network interface to capture from live")
	f.StringVar(&cfg.BPF, "bpf", "", "capture filter (tcpdump syntax, common subset)")
	f.StringVar(&output, "output", "", "write events as NDJSON to this file (- for stdout)")
	f.IntVar(&cfg.PayloadPreview, "payload-preview", 256, "payload bytes kept in message events")
	f.IntVar(&cfg.MaxFlows, "max-flows", 0, "flow table bound (default 262144)")
	f.StringVar(&ouiFile, "oui", "", "IEEE OUI file for vendor names (MA-L CSV or Wireshark manuf)")
	return cmd
}

// Garbage collector settings of vigil sensor, unless GOGC or GOMEMLIMIT
// say otherwise. The sensor's live heap is bounded (flow table, stream
// and fragment buffers) and small next to what it allocates per second,
// so collecting when the heap has grown 4x instead of 2x saves 5-15 % of
// its CPU (docs/benchmarks.md); the soft limit makes the collector work
// harder before the heap passes 1 GiB.
const (
	sensorGCPercent   = 400
	sensorMemoryLimit = 1 << 30
)

func sensorGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(sensorGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(sensorMemoryLimit)
	}
}

// newSensorEnrollCmd enrolls the sensor with a token of class sensor: a
// key and a certificate from Vigil's CA in the state directory, as an
// agent does (vagent.Enroll).
func newSensorEnrollCmd(o *ctlOptions, state *string) *cobra.Command {
	var hostname string
	cmd := &cobra.Command{
		Use:   "enroll --server URL --token T [--ca FILE] [--state DIR]",
		Short: "Enroll this sensor with a Vigil server (a token of class sensor)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.token == "" {
				return fmt.Errorf("no enrollment token: give --token (vigil ctl enroll-token create --class %s)", enroll.SensorClass)
			}
			if hostname == "" {
				hostname, _ = os.Hostname()
			}
			id, err := vagent.Enroll(cmd.Context(), vagent.EnrollOptions{Server: o.server, Token: o.token, StateDir: *state,
				CAFile: o.caFile, Hostname: hostname})
			if err != nil {
				return err
			}
			if class := pki.DeviceClass(id.Certificate().Leaf); class != enroll.SensorClass {
				// The server would refuse every event of this identity:
				// remove it so that the sensor can enroll again.
				for _, f := range []string{vagent.CertFile, vagent.KeyFile, vagent.CAFile, vagent.CommandKeyFile, vagent.ServerFile} {
					_ = os.Remove(filepath.Join(*state, f))
				}
				return fmt.Errorf("cannot enroll as a sensor: the token was of class %q; create one with --class %s", class, enroll.SensorClass)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "enrolled as %s (certificate until %s) in %s\n", id.DeviceID,
				id.Certificate().Leaf.NotAfter.Format(time.RFC3339), *state)
			return nil
		},
	}
	cmd.Flags().StringVar(&hostname, "hostname", "", "name hint for the sensor's id (default: this host's name)")
	return cmd
}

// sensorClient returns the client the sensor posts its events with: mutual
// TLS with the enrolled identity in state (renewed when a third of its
// life is left), or the bearer --token when the sensor is not enrolled.
func sensorClient(cmd *cobra.Command, o *ctlOptions, id *vagent.Identity, idErr error, state string) (*client.Client, error) {
	if idErr != nil {
		if o.token == "" {
			return nil, fmt.Errorf("the sensor is not enrolled (%v) and has no --token: run vigil sensor enroll first", idErr)
		}
		return o.client()
	}
	base := o.server
	if !cmd.Flags().Changed("server") && id.Server != "" {
		base = id.Server
	}
	renew := func(ctx context.Context) error {
		if !id.NeedsRenewal(time.Now()) {
			return nil
		}
		hc := &httpc.Client{TLS: id.TLSConfig(), Timeout: time.Minute, UserAgent: "vigil-sensor"}
		defer hc.Close()
		if err := id.Renew(ctx, hc, base); err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "sensor certificate renewed until %s\n", id.Certificate().Leaf.NotAfter.Format(time.RFC3339))
		return nil
	}
	if err := renew(cmd.Context()); err != nil {
		return nil, err
	}
	// A live sensor runs for months: check again every few hours. The
	// client picks the new certificate up on its next connection.
	go func() {
		t := time.NewTicker(6 * time.Hour)
		defer t.Stop()
		for {
			select {
			case <-cmd.Context().Done():
				return
			case <-t.C:
				if err := renew(cmd.Context()); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "sensor: %v (will retry)\n", err)
				}
			}
		}
	}()
	return client.New(base, "", id.TLSConfig(), client.WithUserAgent("vigil-sensor"))
}

// serverPublisher sends the sensor's events to a Vigil server's bulk
// ingest endpoint, waiting and retrying while the server pushes back.
// The sensor gives it its batches encoded (sensor.LinePublisher).
type serverPublisher struct {
	c   *client.Client
	buf []byte
}

var _ sensor.LinePublisher = (*serverPublisher)(nil)

// ReleasesEvents: the batch is serialized before PublishEvents returns,
// so the sensor may reuse its events' maps (sensor.Releaser).
func (p *serverPublisher) ReleasesEvents() bool { return true }

func (p *serverPublisher) PublishEvents(ctx context.Context, events []vigil.Event) error {
	p.buf = p.buf[:0]
	for i := range events {
		var err error
		if p.buf, err = events[i].AppendJSON(p.buf, true); err != nil {
			return fmt.Errorf("cannot encode event: %w", err)
		}
		p.buf = append(p.buf, '\n')
	}
	return p.PublishLines(ctx, p.buf, len(events))
}

// PublishLines implements sensor.LinePublisher.
func (p *serverPublisher) PublishLines(ctx context.Context, lines []byte, n int) error {
	for {
		res, err := p.c.PostEvents(ctx, lines)
		if d, busy := client.IsBusy(err); busy {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(max(d, 100*time.Millisecond)):
			}
			continue
		}
		if err != nil {
			return err
		}
		if len(res.Rejected) > 0 {
			return fmt.Errorf("the server rejected %d of %d events, first: %+v", len(res.Rejected), n, res.Rejected[0])
		}
		return nil
	}
}
