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
