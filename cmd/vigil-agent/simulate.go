package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/agent/fleet"
	"github.com/vigil-iot/vigil/agent/httpc"
)

// simulate runs N virtual agents speaking the real protocol.
func simulate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	count := fs.Int("count", 10, "number of virtual agents")
	server := fs.String("server", "", "Vigil server base URL (https://host:port)")
	caFile := fs.String("ca", "", "PEM file of Vigil's CA")
	tokens := fs.String("tokens", "", "file of enrollment tokens, one per line (one per agent)")
	admin := fs.String("admin-token", "", "admin API token: mint one enrollment token per agent instead of --tokens")
	class := fs.String("class", "sensor", "device class of minted tokens")
	interval := fs.Duration("interval", time.Minute, "report interval of each agent")
	duration := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	format := fs.String("format", "json", "json or xml")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *server == "" || *caFile == "" || (*tokens == "") == (*admin == "") || *count <= 0 {
		fmt.Fprintln(stderr, "vigil-agent simulate: --server, --ca, --count and one of --tokens or --admin-token are required")
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	pem, err := os.ReadFile(*caFile)
	if err != nil {
		log.Error("cannot read CA", "err", err)
		return 1
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		log.Error("no PEM certificate in the CA file", "file", *caFile)
		return 1
	}
	var list []string
	if *tokens != "" {
		f, err := os.Open(*tokens)
		if err != nil {
			log.Error("cannot read tokens", "err", err)
			return 1
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if t := strings.TrimSpace(sc.Text()); t != "" {
				list = append(list, t)
			}
		}
		f.Close()
		if len(list) < *count {
			log.Error("fewer tokens than agents", "tokens", len(list), "count", *count)
			return 1
		}
	}
	api := &httpc.Client{TLS: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}}
	defer api.Close()
	token := func(ctx context.Context, i int) (string, error) {
		if list != nil {
			return list[i], nil
		}
		body, _ := json.Marshal(map[string]string{"class": *class, "ttl": "1h"})
		resp, err := api.Do(ctx, "POST", strings.TrimRight(*server, "/")+"/api/v1/enroll-tokens",
			map[string]string{"Authorization": "Bearer " + *admin, "Content-Type": "application/json"}, body)
		if err != nil {
			return "", err
		}
		if resp.Status != 201 {
			return "", fmt.Errorf("cannot mint an enrollment token: server answered %d: %.200s", resp.Status, resp.Body)
		}
		var out struct {
			Token string `json:"token"`
		}
		if err := json.Unmarshal(resp.Body, &out); err != nil {
			return "", err
		}
		return out.Token, nil
	}
	start := time.Now()
	fl, err := fleet.Enroll(ctx, fleet.Options{Server: *server, RootCAs: pool, Count: *count, Token: token,
		Interval: *interval, Format: *format, Logger: log})
	if err != nil {
		log.Error("cannot enroll the fleet", "err", err)
		return 1
	}
	fmt.Fprintf(stdout, "enrolled %d agents in %s\n", *count, time.Since(start).Round(time.Millisecond))
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	_ = fl.Run(ctx)
	st := fl.Stats()
	fmt.Fprintf(stdout, "sent %d reports, %d failures\n", st.Reports, st.Failures)
	if st.Failures > 0 {
		return 1
	}
	return 0
}
