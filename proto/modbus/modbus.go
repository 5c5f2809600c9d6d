package modbus

import (
	"encoding/binary"
	"strconv"

	vigil "github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/proto"
)

// Kind is the event kind of every Modbus event.
const Kind = "modbus"

// Anomaly names (anomaly.event), after Suricata's Modbus events.
const (
	AnomalyInvalidProtocolID   = "invalid_protocol_id"
	AnomalyInvalidLength       = "invalid_length"
	AnomalyUnsolicitedResponse = "unsolicited_response"
	AnomalyInvalidFunctionCode = "invalid_function_code"
	AnomalyInvalidValue        = "invalid_value"
	AnomalyInvalidException    = "invalid_exception_code"
	AnomalyTooManyPending      = "flooded"
	AnomalyMalformed           = "malformed_traffic"
)

// maxPending bounds unanswered requests per connection.
const maxPending = 512

// Parser decodes one Modbus/TCP connection. Create one per connection.
type Parser struct {
	pending map[uint16]uint8 // transaction id -> function code
	broken  bool
}

var _ proto.StreamParser = (*Parser)(nil)

// New returns a parser for one connection.
func New() *Parser { return &Parser{} }

// Probe reports whether data looks like a Modbus/TCP request (protocol id
// 0, a plausible length, a public function code).
func Probe(data []byte) bool {
	if len(data) < 8 || data[2] != 0 || data[3] != 0 {
		return false
	}
	l := int(binary.BigEndian.Uint16(data[4:]))
	fc := data[7]
	return l >= 2 && l <= 254 && l+6 == len(data) && fc > 0 && fc < 128 && functionNames[fc] != ""
}

// Gap implements proto.StreamParser: framing is lost, stop decoding.
func (p *Parser) Gap(c *proto.Context, n int, out proto.Emitter) {
	if !p.broken {
		p.broken = true
		out.Emit(c.Anomaly(Kind, AnomalyMalformed, "cannot decode after "+strconv.Itoa(n)+" lost bytes "+c.Dir.String()))
	}
}

// Parse implements proto.StreamParser.
func (p *Parser) Parse(c *proto.Context, data []byte, out proto.Emitter) int {
	if p.broken {
		return len(data)
	}
	consumed := 0
	for len(data)-consumed >= 7 {
		b := data[consumed:]
		pid := binary.BigEndian.Uint16(b[2:])
		l := int(binary.BigEndian.Uint16(b[4:]))
		if pid != 0 {
			p.broken = true
			out.Emit(c.Anomaly(Kind, AnomalyInvalidProtocolID, "protocol id "+strconv.Itoa(int(pid))+", want 0"))
			return len(data)
		}
		if l < 2 || l > 254 {
			p.broken = true
			out.Emit(c.Anomaly(Kind, AnomalyInvalidLength, "mbap length "+strconv.Itoa(l)+" outside 2..254"))
			return len(data)
		}
		if len(b) < 6+l {
			return consumed
		}
		p.pdu(c, binary.BigEndian.Uint16(b), b[6], b[7:6+l], out)
		consumed += 6 + l
	}
	return consumed
}

var functionNames = [128]string{
	1: "read_coils", 2: "read_discrete_inputs", 3: "read_holding_registers",
	4: "read_input_registers", 5: "write_single_coil", 6: "write_single_register",
	7: "read_exception_status", 8: "diagnostics", 11: "get_comm_event_counter",
	12: "get_comm_event_log", 15: "write_multiple_coils", 16: "write_multiple_registers",
	17: "report_server_id", 20: "read_file_record", 21: "write_file_record",
	22: "mask_write_register", 23: "read_write_multiple_registers", 24: "read_fifo_queue",
	43: "encapsulated_interface_transport",
}

var exceptionNames = map[byte]string{
	1: "illegal_function", 2: "illegal_data_address", 3: "illegal_data_value",
	4: "server_device_failure", 5: "acknowledge", 6: "server_device_busy",
	8: "memory_parity_error", 10: "gateway_path_unavailable",
	11: "gateway_target_failed_to_respond",
}

// category classifies a function code as the Modbus specification does.
func category(fc uint8) string {
	switch {
	case functionNames[fc] != "":
		return "public_assigned"
	case fc >= 65 && fc <= 72 || fc >= 100 && fc <= 110:
		return "user_defined"
	case fc == 9 || fc == 10 || fc == 13 || fc == 14 || fc == 41 || fc == 42 || fc == 90 || fc == 91 || fc == 125 || fc == 126 || fc == 127:
		return "reserved"
	}
	return "public_unassigned"
}

// functionValue is what events say of a function code, boxed once for
// event fields.
type functionValue struct {
	name, category, access, table any // name, access and table nil when unknown
}

// functionValues describes each function code (without the exception
// bit).
var functionValues = func() (t [128]functionValue) {
	for fc := range t {
		v := &t[fc]
		if n := functionNames[fc]; n != "" {
			v.name = n
		}
		v.category = category(uint8(fc))
		if acc, table := access(uint8(fc)); acc != "" {
			v.access, v.table = acc, table
		}
	}
	return t
}()

// maxQuantity is the largest quantity a read request of function fc
// (1 to 4) may ask for.
func maxQuantity(fc uint8) float64 {
	if fc <= 2 {
		return 2000
	}
	return 125
}

// isWrite reports whether a function changes device state.
func isWrite(fc uint8) bool {
	switch fc {
	case 5, 6, 15, 16, 21, 22, 23:
		return true
	}
	return false
}

// access names the data table and access of a function.
func access(fc uint8) (acc, table string) {
	switch fc {
	case 1:
		return "read", "coils"
	case 2:
		return "read", "discrete_inputs"
	case 3:
		return "read", "holding_registers"
	case 4:
		return "read", "input_registers"
	case 5, 15:
		return "write", "coils"
	case 6, 16, 22:
		return "write", "holding_registers"
	case 23:
		return "read_write", "holding_registers"
	case 20, 24:
		return "read", "file_records"
	case 21:
		return "write", "file_records"
	}
	return "", ""
}

func (p *Parser) pdu(c *proto.Context, tid uint16, unit uint8, pdu []byte, out proto.Emitter) {
	fc := pdu[0]
	base := fc &^ 0x80
	action := "request"
	if c.Dir == proto.ToClient {
		action = "response"
	}
	ev := c.NewEvent(Kind, action, 12)
	f := &ev.Fields
	f.Set("modbus.transaction_id", proto.Num(float64(tid)))
	f.Set("modbus.unit_id", proto.Num(float64(unit)))
	f.Set("modbus.function_code", proto.Num(float64(base)))
	fv := &functionValues[base&0x7f]
	if fv.name != nil {
		f.Set("modbus.function", fv.name)
	}
	f.Set("modbus.category", fv.category)
	if fv.access != nil {
		f.Set("modbus.access", fv.access)
		f.Set("modbus.table", fv.table)
	}
	f.Set("modbus.write", isWrite(base))
	d := pdu[1:]
	u16 := func(i int) (float64, bool) {
		if len(d) < i+2 {
			return 0, false
		}
		return float64(binary.BigEndian.Uint16(d[i:])), true
	}
	short := func() {
		out.Emit(c.Anomaly(Kind, AnomalyInvalidLength, functionNames[base]+" "+action+" of "+strconv.Itoa(len(pdu))+" bytes is too short"))
	}

	if action == "request" {
		if fc == 0 || fc >= 0x80 {
			out.Emit(c.Anomaly(Kind, AnomalyInvalidFunctionCode, "request function code "+strconv.Itoa(int(fc))))
		}
		if p.pending == nil {
			p.pending = make(map[uint16]uint8)
		}
		if len(p.pending) >= maxPending {
			out.Emit(c.Anomaly(Kind, AnomalyTooManyPending, strconv.Itoa(len(p.pending))+" unanswered requests"))
			clear(p.pending)
		}
		p.pending[tid] = base
		switch base {
		case 1, 2, 3, 4:
			a, ok1 := u16(0)
			q, ok2 := u16(2)
			if !ok1 || !ok2 {
				short()
				break
			}
			f.Set("modbus.address", proto.Num(a))

			f.Set("modbus.quantity", proto.Num(q))
			if max := maxQuantity(base); q == 0 || q > max {
				out.Emit(c.Anomaly(Kind, AnomalyInvalidValue, functionNames[base]+" quantity "+strconv.Itoa(int(q))))
			}
		case 5, 6:
			a, ok1 := u16(0)
			v, ok2 := u16(2)
			if !ok1 || !ok2 {
				short()
				break
			}
			f.Set("modbus.address", proto.Num(a))
			f.Set("modbus.value", proto.Num(v))
			f.Set("modbus.quantity", 1.0)
			if base == 5 && v != 0 && v != 0xff00 {
				out.Emit(c.Anomaly(Kind, AnomalyInvalidValue, "write_single_coil value "+strconv.Itoa(int(v))))
			}
		case 15, 16:
			a, ok1 := u16(0)
			q, ok2 := u16(2)
			if !ok1 || !ok2 || len(d) < 5 {
				short()
				break
			}
			f.Set("modbus.address", proto.Num(a))

			f.Set("modbus.quantity", proto.Num(q))
			bc := int(d[4])
			f.Set("modbus.byte_count", proto.Num(float64(bc)))
			want := int(q) * 2
			if base == 15 {
				want = (int(q) + 7) / 8
			}
			if bc != want || len(d) != 5+bc {
				out.Emit(c.Anomaly(Kind, AnomalyInvalidValue, functionNames[base]+" byte count "+strconv.Itoa(bc)+" for quantity "+strconv.Itoa(int(q))))
			}
		case 22:
			a, ok := u16(0)
			if !ok {
				short()
				break
			}
			f.Set("modbus.address", proto.Num(a))
		case 23:
			ra, ok1 := u16(0)
			rq, ok2 := u16(2)
			wa, ok3 := u16(4)
			wq, ok4 := u16(6)
			if !ok1 || !ok2 || !ok3 || !ok4 {
				short()
				break
			}
			f.Set("modbus.address", proto.Num(ra))

			f.Set("modbus.quantity", proto.Num(rq))
			f.Set("modbus.write_address", proto.Num(wa))
			f.Set("modbus.write_quantity", proto.Num(wq))
		case 8:
			if s, ok := u16(0); ok {
				f.Set("modbus.subfunction", proto.Num(s))
			} else {
				short()
			}
		case 43:
			if len(d) >= 1 {
				f.Set("modbus.mei_type", proto.Num(float64(d[0])))
			} else {
				short()
			}
		}
		out.Emit(ev)
		return
	}

	// Response.
	req, ok := p.pending[tid]
	if ok {
		delete(p.pending, tid)
		if req != base {
			out.Emit(c.Anomaly(Kind, AnomalyUnsolicitedResponse, "response function "+strconv.Itoa(int(base))+" to request function "+strconv.Itoa(int(req))))
		}
	} else if !c.Midstream {
		out.Emit(c.Anomaly(Kind, AnomalyUnsolicitedResponse, "response to transaction "+strconv.Itoa(int(tid))+" with no request"))
	}
	if fc&0x80 != 0 {
		ev.Outcome = vigil.OutcomeFailure
		f.Set("modbus.exception", true)
		if len(d) < 1 {
			short()
		} else {
			f.Set("modbus.exception_code", proto.Num(float64(d[0])))
			if n, ok := exceptionNames[d[0]]; ok {
				f.SetStr("modbus.exception_name", n)
			} else {
				out.Emit(c.Anomaly(Kind, AnomalyInvalidException, "exception code "+strconv.Itoa(int(d[0]))))
			}
		}
		out.Emit(ev)
		return
	}
	ev.Outcome = vigil.OutcomeSuccess
	f.Set("modbus.exception", false)
	switch base {
	case 1, 2, 3, 4:
		if len(d) < 1 {
			short()
			break
		}
		f.Set("modbus.byte_count", proto.Num(float64(d[0])))
		if int(d[0]) != len(d)-1 {
			out.Emit(c.Anomaly(Kind, AnomalyInvalidLength, functionNames[base]+" response byte count "+strconv.Itoa(int(d[0]))+" for "+strconv.Itoa(len(d)-1)+" bytes"))
		}
	case 5, 6:
		if a, ok := u16(0); ok {
			f.Set("modbus.address", proto.Num(a))
			v, _ := u16(2)
			f.Set("modbus.value", proto.Num(v))
		}
	case 15, 16:
		if a, ok := u16(0); ok {
			f.Set("modbus.address", proto.Num(a))
			q, _ := u16(2)
			f.Set("modbus.quantity", proto.Num(q))
		}
	case 8:
		if s, ok := u16(0); ok {
			f.Set("modbus.subfunction", proto.Num(s))
		}
	case 43:
		if len(d) >= 1 {
			f.Set("modbus.mei_type", proto.Num(float64(d[0])))
		}
	}
	out.Emit(ev)
}
