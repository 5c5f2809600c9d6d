package web

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
)

// authorize lets a request through when its bearer token is valid and its
// role holds perm. The token goes into the request context. A client
// address that failed too often is answered 429 (Options.AuthThrottle).
func (s *Server) authorize(perm auth.Permission, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(callerKey{}).(inProcessCaller); ok {
			if rec, ok := w.(*responseRecorder); ok {
				rec.who, rec.actor = c.tok.Name, c.actor
			}
			if !c.tok.Role.Can(perm) {
				WriteError(w, r, s.log, vigil.Errorf(vigil.EFORBIDDEN, "role %s may not %s", c.tok.Role, perm))
				return
			}
			next.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), c.tok)))
			return
		}
		var key netip.Prefix
		if s.authFails != nil {
			key = clientKey(r.RemoteAddr)
			if d := s.authFails.wait(key, s.clock.Now()); d > 0 {
				w.Header().Set("Retry-After", retryAfter(d))
				WriteError(w, r, s.log, vigil.Errorf(vigil.EBUSY, "too many failed authentications from this address: retry in %s", retryAfter(d)+"s"))
				return
			}
		}
		tok, err := s.authenticate(r)
		if err != nil {
			if s.authFails != nil && vigil.ErrorCode(err) == vigil.EUNAUTHORIZED && s.authFails.fail(key, s.clock.Now()) {
				s.log.Warn("client throttled after failed authentications", "remote", r.RemoteAddr)
			}
			WriteError(w, r, s.log, err)
			return
		}
		if rec, ok := w.(*responseRecorder); ok {
			rec.who = tok.Name
		}
		if !tok.Role.Can(perm) {
			WriteError(w, r, s.log, vigil.Errorf(vigil.EFORBIDDEN, "role %s may not %s", tok.Role, perm))
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), tok)))
	})
}

type callerKey struct{}

type inProcessCaller struct {
	tok   auth.Token
	actor string
}

// WithCaller returns a context whose requests, served in-process by the
// Server (its ServeHTTP called directly, never through a listener), act
// as tok without a bearer token: the web console calls the API this way
// for a caller it has authenticated itself, so that the API's permissions
// and audit apply to it unchanged. actor names the caller in audit
// records ("user:alice"; "" means "token:<tok.Name>"). Only code that has
// authenticated the caller may use it: a context cannot come from a
// request's content.
func WithCaller(ctx context.Context, tok auth.Token, actor string) context.Context {
	return context.WithValue(ctx, callerKey{}, inProcessCaller{tok: tok, actor: actor})
}

// Actor names who makes a request in audit records and authored objects:
// the in-process caller's actor (WithCaller: "user:alice"), else
// "token:<name>" of the request's token, else "unknown".
func Actor(ctx context.Context) string {
	if c, ok := ctx.Value(callerKey{}).(inProcessCaller); ok && c.actor != "" {
		return c.actor
	}
	if tok, ok := auth.FromContext(ctx); ok && tok.Name != "" {
		return "token:" + tok.Name
	}
	return "unknown"
}

// authenticate returns the token of the request's Authorization header.
func (s *Server) authenticate(r *http.Request) (auth.Token, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return auth.Token{}, vigil.Errorf(vigil.EUNAUTHORIZED, "no API token: send Authorization: Bearer <token>")
	}
	scheme, plain, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return auth.Token{}, vigil.Errorf(vigil.EUNAUTHORIZED, "the Authorization header must be Bearer <token>")
	}
	return s.opts.Tokens.Verify(strings.TrimSpace(plain))
}

// responseRecorder remembers the status and size of an answer for the
// request log and metrics.
type responseRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	who    string
	actor  string // the audit actor of an in-process caller (WithCaller)
}

func (w *responseRecorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *responseRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe logs every request and counts it in the metrics under its
// route pattern.
func (s *Server) observe(pattern string, quiet bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &responseRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", p)
				if rec.status == 0 {
					WriteError(rec, r, nil, vigil.Errorf(vigil.EINTERNAL, "panic"))
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			d := time.Since(start)
			s.requests.WithLabelValues(pattern, strconv.Itoa(status)).Inc()
			s.duration.WithLabelValues(pattern).Observe(d.Seconds())
			level := slog.LevelInfo
			switch {
			case status >= 500:
				level = slog.LevelError
			case status == http.StatusTooManyRequests:
				level = slog.LevelDebug
			case status < 400 && quiet:
				level = slog.LevelDebug
			}
			if !s.log.Enabled(r.Context(), level) {
				return
			}
			s.log.LogAttrs(r.Context(), level, "request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.String("route", pattern),
				slog.Int("status", status),
				slog.Int64("bytes", rec.bytes),
				slog.Duration("duration", d),
				slog.String("remote", r.RemoteAddr),
				slog.String("token", rec.who),
			)
		}()
		next.ServeHTTP(rec, r)
	})
}
