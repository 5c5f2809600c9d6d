package web

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/hunt"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web/api"
)

// HuntRequest is the body of POST /api/v1/hunt.
type HuntRequest struct {
	Query  string `json:"query"`
	Limit  int    `json:"limit,omitempty"`
	Cursor string `json:"cursor,omitempty"`
}

// HuntResponse is its answer: the result, and how long it took.
type HuntResponse struct {
	hunt.Result
	Query  string  `json:"query"`
	Millis float64 `json:"millis"`
}

// Hunt serves hunting over stored events.
type Hunt struct {
	Src   store.Analytics
	Clock vigil.Clock // resolves relative times (default: system clock)
	Log   *slog.Logger
	// Cache keeps decoded columns of sealed segments and the unsealed
	// tail between hunts (nil: HuntRoutes makes one of
	// hunt.DefaultCacheBytes). One per store.
	Cache *hunt.Cache
}

// HuntRoutes are the hunting routes: POST /api/v1/hunt (read permission;
// audited like every POST, under hunt.run).
func HuntRoutes(h *Hunt) []Route {
	clock := h.Clock
	if clock == nil {
		clock = vigil.SystemClock{}
	}
	if h.Cache == nil {
		h.Cache = hunt.NewCacheAt(0, clock.Now)
	}
	handle := ErrorHandler(h.Log)
	return []Route{
		{Method: "POST", Pattern: api.Prefix + "/hunt", Perm: auth.PermRead, Action: "hunt.run", Handler: handle(func(w http.ResponseWriter, r *http.Request) error {
			var in HuntRequest
			if err := decodeJSON(w, r, &in); err != nil {
				return err
			}
			start := time.Now()
			q, err := hunt.Parse(in.Query, clock.Now())
			if err != nil {
				return huntError(err)
			}
			res, err := hunt.Run(r.Context(), h.Src, q, hunt.Options{Limit: in.Limit, Cursor: in.Cursor, Cache: h.Cache})
			if err != nil {
				return huntError(err)
			}
			writeJSON(w, http.StatusOK, HuntResponse{Result: *res, Query: in.Query, Millis: float64(time.Since(start).Microseconds()) / 1000})
			return nil
		})},
	}
}

// huntError makes a query error a bad request that keeps its position.
func huntError(err error) error {
	var se *hunt.SyntaxError
	if errors.As(err, &se) {
		return vigil.Errorf(vigil.EINVALID, "query %s", se.Error())
	}
	return err
}
