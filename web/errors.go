package web

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/web/api"
)

// statusOf is the one table from vigil error code to HTTP status.
var statusOf = map[string]int{
	vigil.EINVALID:      http.StatusBadRequest,
	vigil.EUNAUTHORIZED: http.StatusUnauthorized,
	vigil.EFORBIDDEN:    http.StatusForbidden,
	vigil.ENOTFOUND:     http.StatusNotFound,
	vigil.ECONFLICT:     http.StatusConflict,
	vigil.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	vigil.EBUSY:         http.StatusTooManyRequests,
	vigil.EINTERNAL:     http.StatusInternalServerError,
}

// StatusOf returns the HTTP status for a vigil error code (500 for an
// unknown code).
func StatusOf(code string) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// codeOfStatus maps the statuses the mux itself produces back to codes.
func codeOfStatus(status int) string {
	switch status {
	case http.StatusNotFound:
		return vigil.ENOTFOUND
	case http.StatusMethodNotAllowed:
		return vigil.EINVALID
	}
	for code, s := range statusOf {
		if s == status {
			return code
		}
	}
	return vigil.EINTERNAL
}

// RetryAfterSeconds is the Retry-After sent with EBUSY answers written by
// WriteError.
const RetryAfterSeconds = "1"

// WriteError answers err as JSON with the status of its vigil code. The
// message of an internal error is replaced by a generic one and the error
// itself is logged. Ingest handlers mounted on the server may use it so
// every error body has the same shape.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := vigil.ErrorCode(err)
	status := StatusOf(code)
	if status >= 500 && log != nil {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	switch code {
	case vigil.EUNAUTHORIZED:
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
	case vigil.EBUSY:
		if w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", RetryAfterSeconds)
		}
	}
	msg := vigil.ErrorMessage(err)
	if status >= 500 {
		// Never show the detail of a failure: it goes to the log only.
		msg = "internal error"
	}
	writeJSON(w, status, api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: msg}})
}

// writeJSON writes v as the JSON body with the status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
