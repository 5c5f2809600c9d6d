package node

import (
	"context"
	"net/http"
	"time"

	"github.com/vigil-iot/vigil/agent/protocol"
)

// Shutdown stops the node in order, each stage with a log line: the
// listener stops accepting connections and the requests in flight (ingest
// among them) end, which publishes what they accepted; then the consumers
// stop; then the store is flushed and closed; last the bus, whose
// embedded NATS server shuts down cleanly so that the next start finds
// JetStream's state written and does not recover it. It returns the
// stages' first failure. A node that was not started is only closed.
func (a *Node) Shutdown() error {
	if a.http == nil || a.done == nil {
		return a.Close()
	}
	log := a.log.With("component", "serve")
	start := time.Now()
	log.Info("shutting down: HTTP listener closed, finishing requests in flight")
	hctx, cancel := context.WithTimeout(context.Background(), httpDrainTimeout)
	a.stopRequests() // agents' long polls end now; other requests finish
	err := a.http.Shutdown(hctx)
	cancel()
	if err != nil {
		log.Warn("HTTP requests cut at the drain timeout", "timeout", httpDrainTimeout, "err", err)
	}
	log.Info("HTTP stopped, ingest drained", "took", time.Since(start).Round(time.Millisecond))
	a.cancel()
	err = a.Wait()
	log.Info("consumers stopped", "took", time.Since(start).Round(time.Millisecond))
	a.closeOnce.Do(func() {
		if a.vuln != nil {
			a.vuln.Flush()
		}
		if cerr := a.store.Close(); cerr != nil {
			log.Error("cannot close the store", "err", cerr)
		}
		log.Info("store flushed and closed", "took", time.Since(start).Round(time.Millisecond))
		a.bus.Close()
		log.Info("bus closed, JetStream shut down", "took", time.Since(start).Round(time.Millisecond))
	})
	log.Info("vigil stopped", "took", time.Since(start).Round(time.Millisecond))
	return err
}

// httpDrainTimeout bounds how long shutdown waits for requests in flight.
const httpDrainTimeout = 5 * time.Second

// withStop serves h, with the context of an agent's long poll for
// commands also cancelled when stop is: http.Server.Shutdown waits for
// requests in flight but does not cancel them, and a poll waits up to a
// minute for a command. Other requests (ingest) run to their end.
func withStop(stop context.Context, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != protocol.PathCommands {
			h.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(stop, cancel)()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}
