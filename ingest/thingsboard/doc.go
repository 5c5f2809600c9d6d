// Package thingsboard converts ThingsBoard audit log entries into Vigil
// events. ThingsBoard (an IoT platform) keeps an audit log of what its
// users do to devices, assets, dashboards and rule chains; its REST API
// (GET /api/audit/logs) returns pages {"data": [entry, ...], "hasNext":
// ...}. An entry names the entity acted on (entityId.entityType,
// entityName), the user (userName), the action (actionType), its outcome
// (actionStatus SUCCESS or FAILURE) and action data whose shape depends on
// the action: an ATTRIBUTES_UPDATED entry carries the attribute scope and
// the new values (as strings), a LOGIN entry the client's address and
// browser.
//
// A successful ATTRIBUTES_UPDATED on a device becomes a twin event (kind
// twin, proto/twin): the device's name is its device id, shared attributes
// (the ones ThingsBoard pushes to the device) and server attributes (set
// for the device by operators and rules) are its desired parameters,
// client attributes (the ones the device reports) its reported ones, each
// number as twin.<section>.<key>. Every other entry becomes an event of
// kind cloud with the entry's own names flattened (actionType,
// entityName, actionData.scope, ...) and ECS fields (user.name,
// source.ip from a login's clientAddress, cloud.provider thingsboard),
// logsource product thingsboard, service audit; an entry that changes a
// device (its credentials, an RPC to it, its deletion) has the device's
// name as device id and logsource category platform_change, as twin
// updates have by their kind (detect/sigma/mapping.yml), so one rule can
// say "a platform change for this device".
//
// Device credentials in action data (an access token, a certificate, a
// password) are removed; thingsboard.credentials_removed says so.
//
// This package parses what it is given: it does not open files, publish
// or talk to any other stage.
package thingsboard
