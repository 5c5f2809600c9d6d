// Package gcp converts Google Cloud Audit Logs into Vigil events of kind
// cloud: LogEntry records whose protoPayload is an AuditLog (Admin
// Activity, Data Access, System Event and Policy Denied logs), as a log
// sink exports them to Cloud Storage (one LogEntry a line), as `gcloud
// logging read --format=json` prints them (a JSON array), one record
// pretty-printed, or wrapped in the Pub/Sub push envelope a push
// subscription POSTs ({"message":{"data":"<base64 LogEntry>"}}).
//
// Each event keeps the entry's own names, flattened with dots
// (protoPayload.methodName, protoPayload.authorizationInfo.permission,
// resource.labels.project_id, logName, ...), carries logsource.product gcp
// and logsource.service gcp.audit (which route it to the SigmaHQ GCP
// rules) and adds ECS fields (cloud.provider, cloud.account.id,
// cloud.region, event.provider, user.name, source.ip,
// user_agent.original, error.code, and gcp.audit.method_name as Elastic's
// GCP module names it). Entries about IoT devices name them: a
// cloudiot_device resource's device_id label, or a resource name
// .../registries/R/devices/D, becomes the event's device id.
//
// This package parses what it is given: it does not open files, publish
// or talk to any other stage.
package gcp
