// Package rtps decodes DDS-RTPS (the wire protocol of DDS and ROS 2) UDP
// datagrams into vigil.Events of kind "rtps" with fields under rtps.* (see
// docs/fields.md): participants announced by SPDP, publications and
// subscriptions announced by SEDP (topic and type names), and DATA
// submessages of user topics. Heartbeats, acknowledgements and gaps are
// not reported. Malformed messages yield anomaly events.
//
// The parser reads datagrams in place, keeps no state and does no I/O.
package rtps
