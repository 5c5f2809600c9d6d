package syslog

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/vigil-iot/vigil"
)

// Source is the Event.Source of syslog messages.
const Source = "syslog"

// Kind is the Event.Kind of syslog messages (the Sigma mapping puts it in
// the logsource product linux, service syslog).
const Kind = "syslog"

// ProvenanceKind is the provenance kind of syslog events:
// "syslog:<sender address>". Syslog authenticates nobody (over TLS
// without client certificates either), so vigil.TrustedProvenance never
// trusts it.
const ProvenanceKind = "syslog"

var facilityNames = [...]string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}

var severityNames = [...]string{"emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug"}

// severities maps syslog severities to Vigil's.
var severities = [...]vigil.Severity{vigil.SeverityCritical, vigil.SeverityCritical, vigil.SeverityHigh,
	vigil.SeverityMedium, vigil.SeverityLow, vigil.SeverityInfo, vigil.SeverityInfo, vigil.SeverityInfo}

// Event returns the event of message m received from peer over transport
// (udp, tcp, tls) at received: kind syslog, its time the message's (the
// receive time when it has none), the fields of docs/sources.md.
func Event(m *Message, peer netip.AddrPort, transport string, received time.Time) vigil.Event {
	f := make(map[string]any, 12+len(m.StructuredData)*2)
	f["log.syslog.facility.code"] = float64(m.Facility)
	f["log.syslog.facility.name"] = facilityNames[m.Facility]
	f["log.syslog.severity.code"] = float64(m.Severity)
	f["log.syslog.severity.name"] = severityNames[m.Severity]
	f["log.syslog.format"] = m.Format
	f["network.transport"] = transport
	if peer.IsValid() {
		f["log.source.address"] = peer.String()
	}
	if m.Hostname != "" {
		f["host.hostname"] = m.Hostname
	}
	if m.AppName != "" {
		f["process.name"] = m.AppName
	}
	if m.ProcID != "" {
		if pid, err := strconv.ParseUint(m.ProcID, 10, 32); err == nil {
			f["process.pid"] = float64(pid)
		} else {
			f["log.syslog.procid"] = m.ProcID
		}
	}
	if m.MsgID != "" {
		f["log.syslog.msgid"] = m.MsgID
	}
	for _, el := range m.StructuredData {
		for _, p := range el.Params {
			f["log.syslog.structured_data."+el.ID+"."+p.Name] = p.Value
		}
	}
	f["message"] = m.Msg
	t := m.Time
	if t.IsZero() {
		t = received
	}
	action := m.AppName
	if action == "" {
		action = "log"
	}
	ev := vigil.Event{
		ID:       vigil.NewID(),
		Time:     t.UTC(),
		Received: received.UTC(),
		Source:   Source,
		Kind:     Kind,
		Category: "host",
		Action:   action,
		Severity: severities[m.Severity],
		Fields:   f,
	}
	if peer.IsValid() {
		ev.Provenance = vigil.NewProvenance(ProvenanceKind, peer.Addr().String())
	}
	return ev
}
