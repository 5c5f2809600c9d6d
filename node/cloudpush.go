package node

import (
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/ingest"
	"github.com/vigil-iot/vigil/ingest/azure"
	"github.com/vigil-iot/vigil/ingest/cloudpush"
	"github.com/vigil-iot/vigil/ingest/cloudtrail"
	"github.com/vigil-iot/vigil/ingest/devmap"
	"github.com/vigil-iot/vigil/ingest/gcp"
	"github.com/vigil-iot/vigil/ingest/thingsboard"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web"
)

// cloudPushFormats are the readers of the cloud push endpoint, by format.
var cloudPushFormats = map[string]cloudpush.Open{
	"cloudtrail":  func(b io.Reader, name string) cloudpush.Records { return cloudtrail.NewReader(b, name) },
	"azure":       func(b io.Reader, name string) cloudpush.Records { return azure.NewReader(b, name) },
	"gcp":         func(b io.Reader, name string) cloudpush.Records { return gcp.NewReader(b, name) },
	"thingsboard": func(b io.Reader, name string) cloudpush.Records { return thingsboard.NewReader(b, name) },
}

// The readers are cloudpush.Records.
var (
	_ cloudpush.Records = (*cloudtrail.Reader)(nil)
	_ cloudpush.Records = (*azure.Reader)(nil)
	_ cloudpush.Records = (*gcp.Reader)(nil)
	_ cloudpush.Records = (*thingsboard.Reader)(nil)
)

// cloudPushRoutes are POST /api/v1/ingest/cloud[/{format}]: cloud
// platforms push their audit logs there with a token that may ingest
// (docs/sources.md).
func (a *Node) cloudPushRoutes(redactor *ingest.Redactor) ([]web.Route, error) {
	h, err := cloudpush.NewHandler(cloudpush.Options{
		Publisher:  a.bus,
		Formats:    cloudPushFormats,
		MaxBytes:   a.cfg.MaxBulkBytes,
		MaxFuture:  time.Duration(a.cfg.MaxClockSkew),
		Redactor:   redactor,
		Logger:     a.log.With("component", "cloudpush"),
		Registerer: a.registry,
	})
	if err != nil {
		return nil, err
	}
	return []web.Route{
		{Method: http.MethodPost, Pattern: cloudpush.Path, Perm: auth.PermIngest, Handler: h, Quiet: true, Action: "ingest.cloud"},
		{Method: http.MethodPost, Pattern: cloudpush.PathFormat, Perm: auth.PermIngest, Handler: h, Quiet: true, Action: "ingest.cloud"},
	}, nil
}

// cloudPushQueryToken lets a sender that cannot set an Authorization
// header (a GCP Pub/Sub push subscription) give its API token as the
// access_token query parameter, on the cloud push endpoint only: the
// parameter becomes the Bearer header and is removed from the URL, so
// that request logs do not hold it.
func cloudPushQueryToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, cloudpush.Path) && r.Header.Get("Authorization") == "" {
			q := r.URL.Query()
			if tok := q.Get("access_token"); tok != "" {
				q.Del("access_token")
				r = r.Clone(r.Context())
				r.URL.RawQuery = q.Encode()
				r.RequestURI = r.URL.RequestURI()
				r.Header.Set("Authorization", "Bearer "+tok)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// newDeviceMapper returns the publisher that gives the events of network
// monitors and log sources (no device id) the id of the inventory's
// device they name (ingest/devmap), before the bus.
func (a *Node) newDeviceMapper() (*devmap.Mapper, error) {
	return devmap.New(devmap.Options{
		Next:   a.bus,
		Logger: a.log.With("component", "devmap"),
		Devices: func(ctx context.Context) ([]vigil.Device, error) {
			var all []vigil.Device
			cursor := ""
			for {
				ds, next, err := a.store.ListDevices(ctx, store.DeviceFilter{Page: store.Page{Limit: 1000, Cursor: cursor}})
				if err != nil {
					return nil, err
				}
				all = append(all, ds...)
				if next == "" {
					return all, nil
				}
				cursor = next
			}
		},
	})
}
