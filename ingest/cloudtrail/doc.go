// Package cloudtrail converts AWS CloudTrail records into Vigil events of
// kind cloud: the log files CloudTrail delivers to S3 ({"Records":[...]},
// one JSON object, usually gzipped), single records one a line (NDJSON, as
// `jq -c '.Records[]'` or a CloudWatch Logs export writes them) and
// EventBridge "AWS API Call via CloudTrail" envelopes (the record is their
// detail).
//
// Each event keeps the record's own names, flattened with dots
// (eventSource, eventName, userIdentity.type, requestParameters.thingName,
// responseElements.ConsoleLogin, errorCode, ...), which the SigmaHQ AWS
// rules use, and adds ECS fields (cloud.provider, cloud.account.id,
// cloud.region, event.provider, user.name, user.id, user_agent.original,
// error.code); the Sigma mapping routes kind cloud to the logsource
// product aws, service cloudtrail. AWS IoT Core events name the things
// they act on: a record's requestParameters.thingName becomes the event's
// device id, and the thing ARNs a job targets are listed in aws.iot.things.
//
// This package parses what it is given: it does not open files, publish
// or talk to any other stage.
package cloudtrail
