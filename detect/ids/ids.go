package ids

import (
	"context"
	"strconv"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect"
)

// Name is the detector's name (Alert.Detector).
const Name = "ids"

// Kind is the event kind of a network monitor's alert.
const Kind = "alert"

// Detector turns the alert events of network monitors into alerts.
type Detector struct{}

var _ detect.Detector = Detector{}

// New returns the detector.
func New() Detector { return Detector{} }

// Name implements detect.Detector.
func (Detector) Name() string { return Name }

// Detect implements detect.Detector: one alert for each event of kind
// alert that names a signature; other events are ignored.
func (Detector) Detect(_ context.Context, _ int, ev *vigil.Event, emit func(vigil.Alert)) {
	if ev.Kind != Kind {
		return
	}
	sig, _ := ev.FieldString("alert.signature")
	if sig == "" {
		return
	}
	product, _ := ev.FieldString("observer.product")
	if product == "" {
		product = ev.Source
	}
	rule := product + ":" + sig
	title := sig
	if sid, ok := ev.Fields["alert.signature_id"].(float64); ok {
		gid, ok := ev.Fields["alert.gid"].(float64)
		if !ok {
			gid = 1
		}
		rule = product + ":" + strconv.FormatFloat(gid, 'f', -1, 64) + ":" + strconv.FormatFloat(sid, 'f', -1, 64)
	} else if msg, _ := ev.FieldString("alert.message"); msg != "" {
		title = sig + ": " + msg
	}
	sev := ev.Severity
	if sev == 0 {
		sev = vigil.SeverityMedium
	}
	tags := []string{"ids", product}
	if cat, _ := ev.FieldString("alert.category"); cat != "" {
		tags = append(tags, "category:"+cat)
	}
	a := vigil.Alert{
		Detector:       Name,
		RuleID:         rule,
		Title:          title,
		Severity:       sev,
		Tags:           tags,
		DeviceID:       ev.DeviceID,
		EventIDs:       []string{ev.ID},
		FirstEventTime: ev.Time,
		LastEventTime:  ev.Time,
		Count:          1,
		Fields:         map[string]any{},
	}
	pair := ""
	if n := ev.Network; n != nil {
		if n.SrcIP.IsValid() {
			a.Entities = append(a.Entities, "ip:"+n.SrcIP.String())
			pair += n.SrcIP.String()
		}
		pair += ">"
		if n.DstIP.IsValid() {
			a.Entities = append(a.Entities, "ip:"+n.DstIP.String())
			pair += n.DstIP.String()
		}
	}
	a.DedupKey = Name + "|" + rule + "|" + ev.DeviceID + "|" + pair
	for k, v := range ev.Fields {
		if len(k) > 6 && k[:6] == "alert." || k == "flow.id" || k == "observer.product" || k == "flow.app_proto" {
			a.Fields[k] = v
		}
	}
	emit(a)
}
