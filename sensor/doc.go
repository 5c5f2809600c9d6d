// Package sensor is Vigil's passive network sensor. It reads captures
// (pcap, pcapng) or captures live through AF_PACKET (pure Go), applies an
// optional tcpdump-style filter, decodes link, IP and transport headers
// (and IEEE 802.15.4 frames), keeps a bounded flow table, reassembles TCP
// streams (out of order, retransmissions, pickup mid-stream) and feeds
// them and UDP datagrams to the protocol decoders of the proto
// sub-packages, recognised by port or by probing their first bytes. It
// emits their events, one flow record per flow (at its end, on timeout or
// eviction, and periodically) and the devices it discovers (MAC, local
// addresses, protocols, MQTT client ids, OUI vendor, 802.15.4 addresses)
// to a Publisher, or as NDJSON.
//
// It owns packets, flows, reassembly and discovery. It must not interpret
// protocols itself (that is proto/*), nor talk to the bus, detection or
// storage other than through the Publisher it is given; cmd/vigil wires
// it. Run is driven from one goroutine and keeps no global state.
package sensor
