package nsm

import (
	"crypto/tls"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/proto"
)

// Source is the Event.Source of events converted from a network monitor's
// logs: "sensor", as for Vigil's own sensor. They are the same kind of
// evidence (a passive observer of the network reporting about the devices
// it sees, never a device reporting about itself), and the stages that
// treat sensor events apart (the learned baseline's peers, the inventory's
// discovered devices) must treat them alike. FieldProduct says which
// monitor it was.
const Source = "sensor"

// FieldProduct is the field naming the monitor whose log an event comes
// from (ECS observer.product): "zeek" or "suricata". Vigil's own sensor
// leaves it unset.
const FieldProduct = "observer.product"

// NewEvent returns an event of the sensor's shape: source sensor,
// category network, the sender-to-receiver 5-tuple n, flow.id (when
// flowID is set) and observer.product, with fields from arena (nil
// allocates) and room for n more.
func NewEvent(arena *proto.FieldArena, t time.Time, kind, action string, n *vigil.Network, flowID, product string, room int) proto.Event {
	ev := proto.Event{Event: vigil.Event{
		Time:     t,
		Source:   Source,
		Kind:     kind,
		Category: "network",
		Action:   action,
		Network:  n,
	}}
	if arena != nil {
		ev.Fields = arena.Get(room + 2)
	} else {
		ev.Fields = make(proto.Fields, 0, room+2)
	}
	if flowID != "" {
		ev.Fields.SetStr("flow.id", flowID)
	}
	ev.Fields.SetStr(FieldProduct, product)
	return ev
}

// Reverse returns n oriented the other way (receiver to sender).
func Reverse(n *vigil.Network) *vigil.Network {
	if n == nil {
		return nil
	}
	return &vigil.Network{Transport: n.Transport, SrcIP: n.DstIP, SrcPort: n.DstPort, DstIP: n.SrcIP, DstPort: n.SrcPort}
}

// TCP flag bits, as in the TCP header.
const (
	FlagFIN = 1 << iota
	FlagSYN
	FlagRST
	FlagPSH
	FlagACK
	FlagURG
	FlagECE
	FlagCWR
)

var flagNames = func() (t [256]string) {
	names := [...]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}
	for f := range t {
		var s []string
		for i, n := range names {
			if f&(1<<i) != 0 {
				s = append(s, n)
			}
		}
		t[f] = strings.Join(s, ",")
	}
	return t
}()

// Flags renders TCP flags as the sensor does: "SYN,ACK,FIN" (flow.tcp_flags).
func Flags(f uint8) string { return flagNames[f] }

// TLSVersion returns the sensor's name of a TLS version ("1.2", "1.3",
// "SSLv3") from a monitor's ("TLSv12", "TLS 1.2", "DTLSv12", "SSLv3"),
// and false when it is not one.
func TLSVersion(s string) (string, bool) {
	switch s {
	case "TLSv10", "TLS 1.0", "TLSv1", "DTLSv10", "DTLS 1.0":
		return "1.0", true
	case "TLSv11", "TLS 1.1":
		return "1.1", true
	case "TLSv12", "TLS 1.2", "DTLSv12", "DTLS 1.2":
		return "1.2", true
	case "TLSv13", "TLS 1.3", "DTLSv13", "DTLS 1.3":
		return "1.3", true
	case "SSLv3", "SSLv2":
		return s, true
	}
	return "", false
}

var cipherCodes = func() map[string]uint16 {
	m := map[string]uint16{}
	for _, cs := range tls.CipherSuites() {
		m[cs.Name] = cs.ID
	}
	for _, cs := range tls.InsecureCipherSuites() {
		m[cs.Name] = cs.ID
	}
	// Suites Go does not implement but monitors name often.
	for name, id := range map[string]uint16{
		"TLS_AES_128_CCM_SHA256": 0x1304, "TLS_AES_128_CCM_8_SHA256": 0x1305,
		"TLS_DHE_RSA_WITH_AES_128_CBC_SHA": 0x0033, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA": 0x0039,
		"TLS_DHE_RSA_WITH_AES_128_GCM_SHA256": 0x009e, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384": 0x009f,
		"TLS_RSA_WITH_AES_256_CBC_SHA256": 0x003d, "TLS_RSA_WITH_RC4_128_MD5": 0x0004,
		"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384": 0xc028, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384": 0xc024,
		"TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256": 0xccaa,
	} {
		m[name] = id
	}
	return m
}()

// TLSCipher returns the sensor's value of a cipher suite ("0x1301", as
// tls.cipher) from its IANA name ("TLS_AES_128_GCM_SHA256"), and false
// when the name is not one Vigil knows.
func TLSCipher(name string) (string, bool) {
	id, ok := cipherCodes[name]
	if !ok {
		return "", false
	}
	const digits = "0123456789abcdef"
	return string([]byte{'0', 'x', digits[id>>12], digits[id>>8&15], digits[id>>4&15], digits[id&15]}), true
}

// ModbusFunction is what the sensor says of a Modbus function code.
type ModbusFunction struct {
	Code     int
	Name     string // read_coils, ...; empty when unassigned
	Category string // public_assigned, public_unassigned, user_defined, reserved
	Access   string // read, write, read_write; empty when not a data access
	Table    string // coils, discrete_inputs, holding_registers, input_registers, file_records
	Write    bool   // the function changes device state
}

var modbusNames = [128]string{
	1: "read_coils", 2: "read_discrete_inputs", 3: "read_holding_registers",
	4: "read_input_registers", 5: "write_single_coil", 6: "write_single_register",
	7: "read_exception_status", 8: "diagnostics", 11: "get_comm_event_counter",
	12: "get_comm_event_log", 15: "write_multiple_coils", 16: "write_multiple_registers",
	17: "report_server_id", 20: "read_file_record", 21: "write_file_record",
	22: "mask_write_register", 23: "read_write_multiple_registers", 24: "read_fifo_queue",
	43: "encapsulated_interface_transport",
}

// Zeek's names that differ from the sensor's (lower-cased).
var modbusAliases = map[string]int{
	"read_coils": 1, "encap_interface_transport": 43, "report_slave_id": 17,
	"read_write_registers": 23, "read_write_multiple_registers": 23,
}

// Modbus describes the function code fc (without the exception bit).
func Modbus(fc int) ModbusFunction {
	f := ModbusFunction{Code: fc}
	if fc < 0 || fc >= len(modbusNames) {
		f.Category = "reserved"
		return f
	}
	f.Name = modbusNames[fc]
	switch {
	case f.Name != "":
		f.Category = "public_assigned"
	case fc >= 65 && fc <= 72 || fc >= 100 && fc <= 110:
		f.Category = "user_defined"
	case fc == 9 || fc == 10 || fc == 13 || fc == 14 || fc == 41 || fc == 42 || fc == 90 || fc == 91 || fc == 125 || fc == 126 || fc == 127:
		f.Category = "reserved"
	default:
		f.Category = "public_unassigned"
	}
	switch fc {
	case 1:
		f.Access, f.Table = "read", "coils"
	case 2:
		f.Access, f.Table = "read", "discrete_inputs"
	case 3:
		f.Access, f.Table = "read", "holding_registers"
	case 4:
		f.Access, f.Table = "read", "input_registers"
	case 5, 15:
		f.Access, f.Table = "write", "coils"
	case 6, 16, 22:
		f.Access, f.Table = "write", "holding_registers"
	case 23:
		f.Access, f.Table = "read_write", "holding_registers"
	case 20, 24: // 24 (FIFO queue) as the sensor classes it
		f.Access, f.Table = "read", "file_records"
	case 21:
		f.Access, f.Table = "write", "file_records"
	}
	f.Write = fc == 5 || fc == 6 || fc == 15 || fc == 16 || fc == 21 || fc == 22 || fc == 23
	return f
}

// ModbusCode returns the function code of a function name, the sensor's
// ("write_single_coil") or Zeek's ("WRITE_SINGLE_COIL"), and false when
// the name is unknown.
func ModbusCode(name string) (int, bool) {
	n := strings.ToLower(name)
	if fc, ok := modbusAliases[n]; ok {
		return fc, true
	}
	for fc, s := range modbusNames {
		if s != "" && s == n {
			return fc, true
		}
	}
	return 0, false
}

// ModbusException names an exception code as the sensor does.
func ModbusException(code int) string {
	switch code {
	case 1:
		return "illegal_function"
	case 2:
		return "illegal_data_address"
	case 3:
		return "illegal_data_value"
	case 4:
		return "server_device_failure"
	case 5:
		return "acknowledge"
	case 6:
		return "server_device_busy"
	case 8:
		return "memory_parity_error"
	case 10:
		return "gateway_path_unavailable"
	case 11:
		return "gateway_target_failed_to_respond"
	}
	return "unknown"
}

// SetModbusFunction sets the sensor's modbus.function_code, .function,
// .category, .access, .table and .write fields of function fc.
func SetModbusFunction(f *proto.Fields, fc int) {
	m := Modbus(fc)
	f.Set("modbus.function_code", float64(fc))
	if m.Name != "" {
		f.SetStr("modbus.function", m.Name)
	}
	f.SetStr("modbus.category", m.Category)
	if m.Access != "" {
		f.SetStr("modbus.access", m.Access)
		f.SetStr("modbus.table", m.Table)
	}
	f.Set("modbus.write", m.Write)
}

// MQTTConnackReason names an MQTT 3.x CONNACK return code as the sensor
// does.
func MQTTConnackReason(code int) string {
	switch code {
	case 0:
		return "accepted"
	case 1:
		return "unacceptable_protocol_version"
	case 2:
		return "identifier_rejected"
	case 3:
		return "server_unavailable"
	case 4:
		return "bad_username_or_password"
	case 5:
		return "not_authorized"
	}
	return "unknown"
}

// MQTTVersion returns the protocol level of an MQTT version as a monitor
// writes it ("3.1" 3, "3.1.1" 4, "5.0" or "5" 5), and false when unknown.
func MQTTVersion(s string) (float64, bool) {
	switch s {
	case "3.1", "3":
		return 3, true
	case "3.1.1", "4":
		return 4, true
	case "5.0", "5":
		return 5, true
	}
	return 0, false
}

// AppProto returns the sensor's name of an application protocol named by
// a monitor ("ssl" is "tls"); a list ("ssl,http") gives its first.
func AppProto(s string) string {
	if i := strings.IndexByte(s, ','); i >= 0 {
		s = s[:i]
	}
	s = strings.ToLower(s)
	switch s {
	case "ssl":
		return "tls"
	}
	return s
}
