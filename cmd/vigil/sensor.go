package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/sensor"
)

func newSensorCmd() *cobra.Command {
	o := &ctlOptions{}
	var (
		cfg     sensor.Config
		output  string
		ouiFile string
		server  bool
	)
	cmd := &cobra.Command{
		Use:   "sensor (--pcap FILE... | --iface IF) [--bpf EXPR] [--server URL --token T | --output FILE.jsonl]",
		Short: "Passive IoT protocol monitoring from capture files or a live interface",
		Long: `Decode the IoT protocols in capture files (pcap, pcapng) or on a live interface
(AF_PACKET, pure Go, needs CAP_NET_RAW): MQTT, CoAP, AMQP, DDS/RTPS, Modbus/TCP, Zigbee,
DNS, HTTP, TLS ClientHello, plus flow records and devices discovered on the wire. Events go
to a Vigil server (--server with an agent or admin --token) or to an NDJSON file (--output,
- for stdout) with no server at all.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(cfg.Pcaps) == 0 && cfg.Iface == "" {
				return fmt.Errorf("give capture files (--pcap) or an interface (--iface)")
			}
			server = cmd.Flags().Changed("server")
			if server == (output != "") {
				return fmt.Errorf("give exactly one of --server and --output")
			}
			if ouiFile != "" {
				oui, err := sensor.LoadOUI(ouiFile)
				if err != nil {
					return err
				}
				cfg.OUI = oui
			}
			cfg.Logger = newLogger(cmd.ErrOrStderr(), "warn")
			if len(cfg.Pcaps) > 0 {
				cfg.Progress = cmd.ErrOrStderr()
			}
			if server {
				c, err := o.client()
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
	f := cmd.Flags()
	f.StringSliceVar(&cfg.Pcaps, "pcap", nil, "capture files (pcap or pcapng), repeatable")
	f.StringVar(&cfg.Iface, "iface", "", "network interface to capture from live")
	f.StringVar(&cfg.BPF, "bpf", "", "capture filter (tcpdump syntax, common subset)")
	f.StringVar(&output, "output", "", "write events as NDJSON to this file (- for stdout)")
	f.IntVar(&cfg.PayloadPreview, "payload-preview", 256, "payload bytes kept in message events")
	f.IntVar(&cfg.MaxFlows, "max-flows", 0, "flow table bound (default 262144)")
	f.StringVar(&ouiFile, "oui", "", "IEEE OUI file for vendor names (MA-L CSV or Wireshark manuf)")
	return cmd
}

// serverPublisher sends the sensor's events to a Vigil server's bulk
// ingest endpoint, waiting and retrying while the server pushes back.
type serverPublisher struct {
	c   *client.Client
	buf bytes.Buffer
}

func (p *serverPublisher) PublishEvents(ctx context.Context, events []vigil.Event) error {
	p.buf.Reset()
	enc := json.NewEncoder(&p.buf)
	for i := range events {
		if err := enc.Encode(&events[i]); err != nil {
			return fmt.Errorf("cannot encode event: %w", err)
		}
	}
	for {
		res, err := p.c.PostEvents(ctx, p.buf.Bytes())
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
			return fmt.Errorf("the server rejected %d of %d events, first: %+v", len(res.Rejected), len(events), res.Rejected[0])
		}
		return nil
	}
}
