package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/ingest/cloudpush"
)

// cloudPusher posts a body to the server's cloud push endpoint
// (ingest/cloudpush), as an EventBridge API destination does.
type cloudPusher func(ctx context.Context, format string, body []byte) error

func newCloudPusher(base, token string, tc *tls.Config) cloudPusher {
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 30 * time.Second}
	return func(ctx context.Context, format string, body []byte) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+cloudpush.Path+"/"+format, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("cannot push %s records: %w", format, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("cannot push %s records: %s", format, resp.Status)
		}
		return nil
	}
}

// cloudConsole is the start of the story with --from-cloud: the fleet's
// AWS account is taken over in the console (a login from a new place
// without MFA, after a week of the operator's logins from the office), a
// certificate is attached to the camera's thing and a job is sent to the
// fleet; CloudTrail delivers the records through EventBridge to the
// server. The device side (the bot on the camera) follows at --attack-at
// and joins the same incident, by the camera's device id.
func (d *demoRun) cloudConsole(ctx context.Context, push cloudPusher, at time.Duration) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Until(d.start.Add(at))):
	}
	now := time.Now().UTC()
	ts := func(t time.Time) string { return t.Format(time.RFC3339Nano) }
	rec := func(id string, t time.Time, src, name, ip, extra string) string {
		return fmt.Sprintf(`{"eventVersion":"1.08","eventID":"demo-%s","eventTime":"%s","eventSource":"%s","eventName":"%s","awsRegion":"eu-west-1","recipientAccountId":"111122223333","sourceIPAddress":"%s","userAgent":"Mozilla/5.0 (X11; Linux x86_64)","userIdentity":{"type":"IAMUser","accountId":"111122223333","userName":"fleet-admin","principalId":"AIDADEMOEXAMPLE"}%s}`,
			id, ts(t), src, name, ip, extra)
	}
	// What CloudTrail recorded before the demo: a week of the operator's
	// console logins from the office, with MFA.
	var history []string
	for day := 10; day >= 3; day-- {
		history = append(history, rec(fmt.Sprintf("office-%d", day), now.Add(-time.Duration(day)*24*time.Hour), "signin.amazonaws.com", "ConsoleLogin", "198.51.100.20",
			`,"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"MFAUsed":"Yes"}`))
	}
	if err := push(ctx, "cloudtrail", []byte(`{"Records":[`+strings.Join(history, ",")+`]}`)); err != nil {
		d.printf("cloud    %v\n", err)
		return
	}
	var things []string
	for i, dev := range d.fleet.Devices {
		if i < 20 {
			things = append(things, `"arn:aws:iot:eu-west-1:111122223333:thing/`+dev.ID+`"`)
		}
	}
	steps := []struct{ say, rec string }{
		{"console login of fleet-admin from 203.0.113.66, a network it never used, without MFA",
			rec("login", now, "signin.amazonaws.com", "ConsoleLogin", "203.0.113.66", `,"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"MFAUsed":"No"}`)},
		{"a certificate of the attacker attached to " + d.target.ID + "'s thing",
			rec("attach", now.Add(500*time.Millisecond), "iot.amazonaws.com", "AttachThingPrincipal", "203.0.113.66", `,"requestParameters":{"thingName":"`+d.target.ID+`","principal":"arn:aws:iot:eu-west-1:111122223333:cert/3f1c"}`)},
		{fmt.Sprintf("a job sent to %d things (\"firmware update\")", len(things)),
			rec("job", now.Add(time.Second), "iot.amazonaws.com", "CreateJob", "203.0.113.66", `,"requestParameters":{"jobId":"fw-2026-12","targets":[`+strings.Join(things, ",")+`]}`)},
	}
	for _, s := range steps {
		d.printf("cloud    AWS console: %s\n", s.say)
		if err := push(ctx, "cloudtrail", []byte(s.rec)); err != nil {
			d.printf("cloud    %v\n", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}
