// Package azure converts Azure Monitor resource logs into Vigil events of
// kind cloud: the Azure Activity log, Microsoft Entra ID sign-in and audit
// logs and IoT Hub resource logs, as diagnostic settings export them to a
// storage account or an event hub ({"records":[...]}, or one record a
// line).
//
// Each event keeps the record's own names, flattened with dots
// (operationName, resultType, properties.userPrincipalName, ...), carries
// logsource.product azure and logsource.service activitylogs, signinlogs,
// auditlogs or iothub (which route it to those Sigma rules) and adds ECS
// fields (cloud.provider, cloud.account.id, user.name, source.ip,
// user_agent.original, event.provider). An IoT Hub record's deviceId
// becomes the event's device id.
//
// This package parses what it is given: it does not open files, publish
// or talk to any other stage.
package azure
