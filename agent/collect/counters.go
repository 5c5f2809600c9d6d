package collect

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// ParseSNMP reads the kernel's protocol counters in the two-line format of
// /proc/net/snmp and /proc/net/netstat: a line "Proto: Name1 Name2 ..."
// followed by a line "Proto: v1 v2 ...". It calls visit for every counter
// (proto without the colon, e.g. "Udp" or "TcpExt"); the strings passed
// are only valid during the call. Negative values (Tcp MaxConn is -1) are
// passed as 0. A value line that does not follow its name line, or whose
// count differs from it, is an error naming the line; the counters before
// it were already visited.
func ParseSNMP(b []byte, visit func(proto, name string, v uint64)) error {
	line := 0
	for len(b) > 0 {
		var names, values []byte
		names, b, _ = bytes.Cut(b, []byte("\n"))
		line++
		if len(bytes.TrimSpace(names)) == 0 {
			continue
		}
		if len(b) == 0 {
			return fmt.Errorf("line %d: counter names without a line of values", line)
		}
		values, b, _ = bytes.Cut(b, []byte("\n"))
		line++
		np, nrest, ok1 := bytes.Cut(names, []byte(":"))
		vp, vrest, ok2 := bytes.Cut(values, []byte(":"))
		if !ok1 || !ok2 || !bytes.Equal(np, vp) {
			return fmt.Errorf("line %d: want a %q line of values after the names, got %.40q", line, np, values)
		}
		proto := string(np)
		nf, vf := strings.Fields(string(nrest)), strings.Fields(string(vrest))
		if len(nf) != len(vf) {
			return fmt.Errorf("line %d: %s has %d names but %d values", line, proto, len(nf), len(vf))
		}
		for i := range nf {
			v, err := strconv.ParseUint(vf[i], 10, 64)
			if err != nil {
				if _, err2 := strconv.ParseInt(vf[i], 10, 64); err2 != nil {
					return fmt.Errorf("line %d: %s %s: %q is not a number", line, proto, nf[i], vf[i])
				}
				v = 0
			}
			visit(proto, nf[i], v)
		}
	}
	return nil
}

// ParseSNMP6 reads the kernel's IPv6 protocol counters in the format of
// /proc/net/snmp6: one "Name value" pair a line, the protocol the name's
// prefix (Ip6, Icmp6, Udp6, UdpLite6). It calls visit for every counter
// with the whole name; the string passed is only valid during the call.
// A line that is not a name and a number is an error naming the line; the
// counters before it were already visited.
func ParseSNMP6(b []byte, visit func(name string, v uint64)) error {
	line := 0
	for len(b) > 0 {
		var l []byte
		l, b, _ = bytes.Cut(b, []byte("\n"))
		line++
		f := bytes.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return fmt.Errorf("line %d: want a counter name and its value, got %.40q", line, l)
		}
		v, err := strconv.ParseUint(string(f[1]), 10, 64)
		if err != nil {
			return fmt.Errorf("line %d: %s: %.20q is not a number", line, f[0], f[1])
		}
		visit(string(f[0]), v)
	}
	return nil
}
