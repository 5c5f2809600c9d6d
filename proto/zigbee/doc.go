// Package zigbee decodes IEEE 802.15.4 MAC frames and the Zigbee NWK and
// APS layers carried in them into vigil.Events of kind "zigbee" with
// fields under zigbee.* (see docs/fields.md): PAN ids and addresses, frame
// types, the security headers (encrypted or not, key type, frame
// counter), APS clusters and profiles, and APS commands. APS frames are
// tried with the well-known default trust centre link key
// ("ZigBeeAlliance09", AES-CCM* with the MIC checked). A Transport-Key of a
// network key that travels without encryption, or under that default key,
// is flagged with a high-severity anomaly (network_key_in_clear,
// network_key_under_default_link_key); the key itself is never kept.
//
// The decoder reads frames in place, keeps no state and does no I/O.
// Acknowledgement frames are counted by the sensor but produce no event.
package zigbee
