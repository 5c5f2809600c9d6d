package web

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/vigil-iot/vigil"
)

// ListenConfig says where and how to serve.
type ListenConfig struct {
	// Addr is the host:port to listen on (":8443", "127.0.0.1:0").
	Addr string
	// Certificate is the server certificate (pki.CA.EnsureServerCert).
	// Required unless PlainHTTP.
	Certificate *tls.Certificate
	// ClientCAs, when set, makes the server ask for client certificates
	// and verify those it gets against this pool (device mTLS); clients
	// without one still connect and authenticate with a token.
	ClientCAs *x509.CertPool
	// PlainHTTP serves without TLS. It is refused unless Addr is a
	// loopback address.
	PlainHTTP bool
	// ShutdownTimeout bounds how long ListenAndServe waits for requests
	// in flight when its context ends (default 10s).
	ShutdownTimeout time.Duration
	// Logger receives the listener's logs (component=web is added).
	Logger *slog.Logger
}

// CipherSuites are the TLS 1.2 suites a Vigil listener accepts: ECDHE
// key exchange with an AEAD cipher (AES-GCM, ChaCha20-Poly1305) only, so
// no CBC mode, SHA-1 MAC or static RSA key exchange. TLS 1.3 suites are
// all AEAD and are not configurable.
var CipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// HTTPServer is a running listener; see Listen.
type HTTPServer struct {
	srv  *http.Server
	ln   net.Listener
	tls  bool
	done chan struct{}
	err  error
	log  *slog.Logger
}

// Listen binds cfg.Addr and serves h on it in the background, over TLS
// (at least TLS 1.2) unless cfg.PlainHTTP. It returns once the socket is
// listening, so Addr and URL are usable at once (port 0 works).
func Listen(cfg ListenConfig, h http.Handler) (*HTTPServer, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "web")
	var tlsConf *tls.Config
	if cfg.PlainHTTP {
		if err := checkLoopback(cfg.Addr); err != nil {
			return nil, err
		}
	} else {
		if cfg.Certificate == nil {
			return nil, vigil.Errorf(vigil.EINVALID, "cannot listen on %s: TLS needs a server certificate (or plain HTTP on a loopback address)", cfg.Addr)
		}
		tlsConf = &tls.Config{
			MinVersion:   tls.VersionTLS12,
			CipherSuites: CipherSuites,
			Certificates: []tls.Certificate{*cfg.Certificate},
		}
		if cfg.ClientCAs != nil {
			tlsConf.ClientCAs = cfg.ClientCAs
			tlsConf.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", cfg.Addr, err)
	}
	if cfg.PlainHTTP {
		// The name resolved to loopback above; make sure the socket agrees.
		if ap, err := netip.ParseAddrPort(ln.Addr().String()); err != nil || !ap.Addr().IsLoopback() {
			ln.Close()
			return nil, vigil.Errorf(vigil.EINVALID, "cannot serve plain HTTP on %s: it is not a loopback address", ln.Addr())
		}
	}
	s := &HTTPServer{
		srv: &http.Server{
			Handler:           h,
			TLSConfig:         tlsConf,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       2 * time.Minute,
			WriteTimeout:      2 * time.Minute,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			// TLS handshake failures and the like are client noise.
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
		ln:   ln,
		tls:  !cfg.PlainHTTP,
		done: make(chan struct{}),
		log:  log,
	}
	go func() {
		defer close(s.done)
		var err error
		if s.tls {
			err = s.srv.ServeTLS(ln, "", "")
		} else {
			err = s.srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
	if cfg.PlainHTTP {
		log.Warn("serving plain HTTP on loopback, without TLS", "addr", ln.Addr().String())
	} else {
		log.Info("serving HTTPS", "addr", ln.Addr().String())
	}
	return s, nil
}

// checkLoopback accepts a host:port whose host is a loopback address or a
// name that resolves only to loopback addresses.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return vigil.Errorf(vigil.EINVALID, "cannot listen on %q: %v", addr, err)
	}
	refuse := vigil.Errorf(vigil.EINVALID, "cannot serve plain HTTP on %q: only a loopback address (127.0.0.1, ::1, localhost) may serve without TLS", addr)
	if host == "" {
		return refuse
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !ip.IsLoopback() {
			return refuse
		}
		return nil
	}
	if host != "localhost" {
		return refuse
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return refuse
	}
	for _, ip := range ips {
		if !ip.Unmap().IsLoopback() {
			return refuse
		}
	}
	return nil
}

// Addr returns the address the server listens on.
func (s *HTTPServer) Addr() net.Addr { return s.ln.Addr() }

// URL returns the server's base URL ("https://127.0.0.1:8443").
func (s *HTTPServer) URL() string {
	scheme := "https"
	if !s.tls {
		scheme = "http"
	}
	return scheme + "://" + s.ln.Addr().String()
}

// Done is closed when the server stopped serving.
func (s *HTTPServer) Done() <-chan struct{} { return s.done }

// Err returns why the server stopped, nil after Shutdown or while running.
func (s *HTTPServer) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Shutdown stops accepting connections and waits for requests in flight
// until ctx ends, then closes what is left.
func (s *HTTPServer) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	<-s.done
	return err
}

// ListenAndServe serves h as Listen does until ctx ends, then shuts down
// gracefully. It returns nil after a clean shutdown.
func ListenAndServe(ctx context.Context, cfg ListenConfig, h http.Handler) error {
	s, err := Listen(cfg, h)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-s.done:
		return s.err
	}
	timeout := cfg.ShutdownTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		return fmt.Errorf("cannot shut down HTTP server: %w", err)
	}
	return nil
}
