package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/ingest"
	"github.com/vigil-iot/vigil/ingest/azure"
	"github.com/vigil-iot/vigil/ingest/cloudtrail"
	"github.com/vigil-iot/vigil/ingest/gcp"
	"github.com/vigil-iot/vigil/ingest/thingsboard"
)

// isCloudTrail tells whether a log whose first line is l (head: its
// first bytes) holds AWS CloudTrail records: a log file's {"Records":
// object, a record, or a pretty-printed one.
func isCloudTrail(l, head []byte) bool {
	if bytes.HasPrefix(l, []byte(`{"Records":`)) {
		return true
	}
	if len(bytes.TrimSpace(l)) == 1 {
		l = head // pretty-printed: look further
	}
	return bytes.Contains(l, []byte(`"eventSource":`)) && bytes.Contains(l, []byte(`"eventName":`)) &&
		(bytes.Contains(l, []byte(`"eventTime":`)) || bytes.Contains(l, []byte(`"Records":`)))
}

// cloudtrail converts CloudTrail records (ingest/cloudtrail: log files,
// NDJSON, pretty-printed, EventBridge envelopes) and passes them on.
func (in *ingestRun) cloudtrail(ctx context.Context, name string, br *bufio.Reader) error {
	r := cloudtrail.NewReader(br, name)
	defer func() { in.records += r.Stats().Records }()
	return in.cloudEvents(ctx, func() (vigil.Event, error) {
		ev, err := r.Next()
		var re *cloudtrail.RecordError
		if errors.As(err, &re) {
			return ev, errBadRecord{err}
		}
		return ev, err
	})
}

// errBadRecord wraps the error of one record: it is reported and skipped.
type errBadRecord struct{ error }

// cloudEvents passes on the events next returns until io.EOF.
func (in *ingestRun) cloudEvents(ctx context.Context, next func() (vigil.Event, error)) error {
	var batch []byte
	n := 0
	for {
		ev, err := next()
		if err == io.EOF {
			break
		}
		var bad errBadRecord
		if errors.As(err, &bad) {
			in.reportBad(bad.error)
			continue
		}
		if err != nil {
			return err
		}
		before := len(batch)
		if batch, err = ev.AppendJSON(batch, true); err != nil {
			batch = batch[:before]
			in.reportBad(err)
			continue
		}
		batch = append(batch, '\n')
		n++
		if n >= 512 {
			if err := in.sink.write(ctx, batch, n); err != nil {
				return err
			}
			in.events += n
			batch, n = batch[:0], 0
		}
	}
	in.events += n
	if n == 0 {
		return nil
	}
	return in.sink.write(ctx, batch, n)
}

// isAzure tells whether a log whose first line is l (head: its first
// bytes) holds Azure resource log records.
func isAzure(l, head []byte) bool {
	if bytes.HasPrefix(l, []byte(`{"records":`)) {
		return true
	}
	if len(bytes.TrimSpace(l)) == 1 {
		l = head
	}
	return bytes.Contains(l, []byte(`"operationName":`)) && bytes.Contains(l, []byte(`"category":`)) && bytes.Contains(l, []byte(`"resourceId":`))
}

// azure converts Azure resource log records (ingest/azure) and passes
// them on.
func (in *ingestRun) azure(ctx context.Context, name string, br *bufio.Reader) error {
	r := azure.NewReader(br, name)
	defer func() { in.records += r.Stats().Records }()
	return in.cloudEvents(ctx, func() (vigil.Event, error) {
		ev, err := r.Next()
		var re *azure.RecordError
		if errors.As(err, &re) {
			return ev, errBadRecord{err}
		}
		return ev, err
	})
}

// isGCP tells whether a log whose first line is l (head: its first bytes)
// holds GCP Cloud Audit Logs entries (or Pub/Sub push envelopes, which
// cannot be told apart from other Pub/Sub messages: they need --format).
func isGCP(l, head []byte) bool {
	if len(bytes.TrimSpace(l)) == 1 {
		l = head // pretty-printed, or gcloud's array
	}
	return bytes.Contains(l, []byte(`"protoPayload":`)) && bytes.Contains(l, []byte(`"logName":`))
}

// gcp converts GCP Cloud Audit Logs entries (ingest/gcp) and passes them
// on.
func (in *ingestRun) gcp(ctx context.Context, name string, br *bufio.Reader) error {
	r := gcp.NewReader(br, name)
	defer func() { in.records += r.Stats().Records }()
	return in.cloudEvents(ctx, func() (vigil.Event, error) {
		ev, err := r.Next()
		var re *gcp.RecordError
		if errors.As(err, &re) {
			return ev, errBadRecord{err}
		}
		return ev, err
	})
}

// isThingsBoard tells whether a log whose first line is l (head: its first
// bytes) holds ThingsBoard audit log entries (a REST API page or entries).
func isThingsBoard(l, head []byte) bool {
	if len(bytes.TrimSpace(l)) == 1 || bytes.HasPrefix(l, []byte(`{"data":`)) {
		l = head
	}
	return bytes.Contains(l, []byte(`"actionType":`)) && bytes.Contains(l, []byte(`"createdTime":`))
}

// thingsboard converts ThingsBoard audit log entries (ingest/thingsboard)
// and passes them on.
func (in *ingestRun) thingsboard(ctx context.Context, name string, br *bufio.Reader) error {
	r := thingsboard.NewReader(br, name)
	defer func() { in.records += r.Stats().Records }()
	return in.cloudEvents(ctx, func() (vigil.Event, error) {
		ev, err := r.Next()
		var re *ingest.RecordError
		if errors.As(err, &re) {
			return ev, errBadRecord{err}
		}
		return ev, err
	})
}
