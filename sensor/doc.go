// Package sensor is Vigil's passive network sensor: it reads captures
// (pcap, pcapng), decodes link, IP and transport headers, keeps a bounded
// flow table, reassembles TCP streams (out of order, retransmissions,
// pickup mid-stream) and feeds them and UDP datagrams to the protocol
// decoders of the proto sub-packages. It emits their events and one flow
// record per flow (at its end, on timeout or eviction, and periodically)
// to a Publisher, or as NDJSON.
//
// It owns packets, flows and reassembly. It must not interpret protocols
// itself (that is proto/*), nor talk to the bus, detection or storage
// other than through the Publisher it is given; cmd/vigil wires it.
package sensor
