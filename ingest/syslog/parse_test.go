package syslog

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)

func TestParse(t *testing.T) {
	f := func(in string, want Message) {
		t.Helper()
		got, err := Parse([]byte(in), now, nil)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Errorf("%q:\n got %s\nwant %s", in, g, w)
		}
	}
	// The examples of RFC 5424 §6.5.
	f("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8",
		Message{Format: RFC5424, Facility: 4, Severity: 2, Time: time.Date(2003, 10, 11, 22, 14, 15, 3e6, time.UTC),
			Hostname: "mymachine.example.com", AppName: "su", MsgID: "ID47", Msg: "'su root' failed for lonvick on /dev/pts/8"})
	f("<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
		Message{Format: RFC5424, Facility: 20, Severity: 5, Time: time.Date(2003, 8, 24, 5, 14, 15, 3000, time.FixedZone("", -7*3600)),
			Hostname: "192.0.2.1", AppName: "myproc", ProcID: "8710", Msg: "%% It's time to make the do-nuts."})
	f(`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry...`,
		Message{Format: RFC5424, Facility: 20, Severity: 5, Time: time.Date(2003, 10, 11, 22, 14, 15, 3e6, time.UTC),
			Hostname: "mymachine.example.com", AppName: "evntslog", MsgID: "ID47",
			StructuredData: []SDElement{{ID: "exampleSDID@32473", Params: []SDParam{{"iut", "3"}, {"eventSource", "Application"}, {"eventID", "1011"}}}},
			Msg:            "An application event log entry..."})
	f(`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`,
		Message{Format: RFC5424, Facility: 20, Severity: 5, Time: time.Date(2003, 10, 11, 22, 14, 15, 3e6, time.UTC),
			Hostname: "mymachine.example.com", AppName: "evntslog", MsgID: "ID47",
			StructuredData: []SDElement{{ID: "exampleSDID@32473", Params: []SDParam{{"iut", "3"}, {"eventSource", "Application"}, {"eventID", "1011"}}},
				{ID: "examplePriority@32473", Params: []SDParam{{"class", "high"}}}}})
	// Escapes in a PARAM-VALUE; nil values.
	f(`<13>1 - - - - - [a@1 v="q\"b\\s\]e"] m`,
		Message{Format: RFC5424, Facility: 1, Severity: 5, StructuredData: []SDElement{{ID: "a@1", Params: []SDParam{{"v", `q"b\s]e`}}}}, Msg: "m"})
	// The example of RFC 3164 §5.4, and what logger --rfc3164 sends.
	f("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
		Message{Format: RFC3164, Facility: 4, Severity: 2, Time: time.Date(2025, 10, 11, 22, 14, 15, 0, time.UTC),
			Hostname: "mymachine", AppName: "su", Msg: "'su root' failed for lonvick on /dev/pts/8"})
	f("<13>Jan  5 11:59:00 gw-1 root[4242]: hello",
		Message{Format: RFC3164, Facility: 1, Severity: 5, Time: time.Date(2026, 1, 5, 11, 59, 0, 0, time.UTC),
			Hostname: "gw-1", AppName: "root", ProcID: "4242", Msg: "hello"})
	// Without a hostname; an RFC 3339 time in the header (rsyslog).
	f("<86>Jan  5 11:00:00 sshd[77]: Accepted password for root",
		Message{Format: RFC3164, Facility: 10, Severity: 6, Time: time.Date(2026, 1, 5, 11, 0, 0, 0, time.UTC),
			AppName: "sshd", ProcID: "77", Msg: "Accepted password for root"})
	f("<14>2026-01-05T10:00:00.5+01:00 cam-7 dropbear[9]: Bad password attempt",
		Message{Format: RFC3164, Facility: 1, Severity: 6, Time: time.Date(2026, 1, 5, 10, 0, 0, 5e8, time.FixedZone("", 3600)),
			Hostname: "cam-7", AppName: "dropbear", ProcID: "9", Msg: "Bad password attempt"})
	// RFC 3164 §4.3.3: no PRI is user.notice with the whole text.
	f("just text", Message{Format: RFC3164, Facility: 1, Severity: 5, Msg: "just text"})
	f("<999>x", Message{Format: RFC3164, Facility: 1, Severity: 5, Msg: "<999>x"})
	// No timestamp: the rest is the message.
	f("<13>hello world", Message{Format: RFC3164, Facility: 1, Severity: 5, Msg: "hello world"})
}

func TestParseErrors(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		_, err := Parse([]byte(in), now, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", in, err, want)
		}
	}
	f("<34>1 yesterday host app - - - m", `TIMESTAMP at byte 6: "yesterday" is not an RFC 3339 time`)
	f("<34>1 - host", "HOSTNAME at byte 8: no space after it")
	f("<34>1 - host app - - x", "STRUCTURED-DATA at byte 21: want - or [")
	f(`<34>1 - host app - - [id a="b]`, "no closing quote")
	f(`<34>1 - host app - - [id a="b"`, "no closing ]")
	f(`<34>1 - host app - - [id a=b]`, `want ="`)
	f("<34>1 - "+strings.Repeat("h", 256)+" app - - -", "HOSTNAME at byte 8: longer than 255")
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xef\xbb\xbf'su root' failed",
		`<165>1 2003-10-11T22:14:15.003Z h e - ID47 [x@1 a="3" b="\]"][y@2 c="d"] msg`,
		"<34>Oct 11 22:14:15 mymachine su: 'su root' failed",
		"<13>Jan  5 11:59:00.123456 gw-1 root[4242]: hello",
		"<14>2026-01-05T10:00:00.5+01:00 cam-7 dropbear[9]: x",
		"no pri",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b, now, nil)
		if err != nil {
			return
		}
		if m.Facility < 0 || m.Facility > 23 || m.Severity < 0 || m.Severity > 7 {
			t.Fatalf("priority out of range: %+v", m)
		}
		ev := Event(&m, testPeer, "udp", now)
		if _, err := ev.AppendJSON(nil, true); err != nil {
			t.Fatalf("event does not encode: %v", err)
		}
	})
}
