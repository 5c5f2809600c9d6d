package enroll

import (
	"net/http"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/ingest/httpin"
	"github.com/vigil-iot/vigil/pki"
	"github.com/vigil-iot/vigil/web"
)

// SensorClass is the device class of passive sensors (vigil sensor). A
// sensor enrolls like an agent, with a token of this class, and then posts
// the events it decodes from the wire to POST /api/v1/events with its
// certificate. Those events describe the devices it observes, so they keep
// their own device ids; the sensor is recorded as their observer.
const SensorClass = "sensor"

// requireSensor lets a request through when Authenticate accepts its
// client certificate and the certificate's class is SensorClass; the
// sensor's id goes into the context (httpin.WithObserver). Another device
// (a camera's agent) is refused with EFORBIDDEN: it may report about
// itself, not post events in other devices' names.
func (h *Handler) requireSensor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := h.Authenticate(r)
		if err == nil {
			if class := pki.DeviceClass(r.TLS.PeerCertificates[0]); class != SensorClass {
				err = vigil.Errorf(vigil.EFORBIDDEN, "device %s of class %q may not post events: only certificates enrolled with a token of class %q may", id, class, SensorClass)
			}
		}
		if err != nil {
			h.log.Info("sensor request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
			web.WriteError(w, r, h.log, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(httpin.WithObserver(r.Context(), id)))
	})
}
