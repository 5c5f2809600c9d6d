// Package modbus decodes Modbus/TCP (MBAP framing over a reassembled TCP
// connection) into vigil.Events of kind "modbus", one per request and
// response, with fields under modbus.* (see docs/fields.md): unit id,
// function code, addresses and quantities, exceptions, and a modbus.write
// flag on every request that changes device state. Malformed or
// out-of-state traffic yields anomaly events.
//
// The parser reads the sensor's buffers in place and does no I/O.
package modbus
