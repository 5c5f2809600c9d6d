package command

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// IsolateChain is the iptables and ip6tables chain of isolate, in table
// filter, jumped to first from INPUT and OUTPUT.
const IsolateChain = "VIGIL_ISOLATE"

// IsolateRuleset is the nftables ruleset of isolate: drop everything in
// and out except loopback and the server's addresses.
func IsolateRuleset(server []netip.Addr) string {
	var b strings.Builder
	b.WriteString("table inet vigil_isolate {\n")
	for _, dir := range []struct{ chain, hook, lo, ip string }{{"input", "input", "iif", "saddr"}, {"output", "output", "oif", "daddr"}} {
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority -10; policy drop;\n\t\t%s \"lo\" accept\n", dir.chain, dir.hook, dir.lo)
		for _, a := range server {
			fam := "ip"
			if is6(a) {
				fam = "ip6"
			}
			fmt.Fprintf(&b, "\t\t%s %s %s accept\n", fam, dir.ip, a.Unmap())
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// IptablesIsolateRules is the iptables-restore input of isolate for IPv4
// (six false) or IPv6 (ip6tables-restore): the chain VIGIL_ISOLATE
// accepts loopback and the server's addresses of that family and drops
// the rest, and is jumped to first from INPUT and OUTPUT. It is applied
// with --noflush, so the other rules stay, in one commit: all or nothing.
func IptablesIsolateRules(server []netip.Addr, six bool) string {
	const a = "-A " + IsolateChain
	var b strings.Builder
	b.WriteString("*filter\n:" + IsolateChain + " - [0:0]\n" + a + " -i lo -j ACCEPT\n" + a + " -o lo -j ACCEPT\n")
	for _, addr := range server {
		if is6(addr) != six {
			continue
		}
		ip := addr.Unmap().String()
		b.WriteString(a + " -s " + ip + " -j ACCEPT\n" + a + " -d " + ip + " -j ACCEPT\n")
	}
	b.WriteString(a + " -j DROP\n-I INPUT 1 -j " + IsolateChain + "\n-I OUTPUT 1 -j " + IsolateChain + "\nCOMMIT\n")
	return b.String()
}

func is6(a netip.Addr) bool { return a.Is6() && !a.Is4In6() }

// has tells whether a program is found.
func (s *System) has(prog string) bool {
	look := s.LookPath
	if look == nil {
		look = exec.LookPath
	}
	_, err := look(prog)
	return err == nil
}

// firewall is the configured firewall, or nft when found, else iptables.
func (s *System) firewall() string {
	if s.Firewall != "" {
		return s.Firewall
	}
	if s.has("nft") {
		return "nft"
	}
	return "iptables"
}

// iptablesFamilies are the iptables tools per address family.
var iptablesFamilies = []struct {
	tool, restore string
	six           bool
}{{"iptables", "iptables-restore", false}, {"ip6tables", "ip6tables-restore", true}}

func (s *System) isolate(ctx context.Context) (string, error) {
	if len(s.ServerAddrs) == 0 {
		return "", errors.New("cannot isolate: the server's address is unknown, isolation would cut the agent off")
	}
	_, _ = s.restore(ctx) // start from a clean state
	switch s.firewall() {
	case "nft":
		out, err := s.run(ctx, []string{"nft", "-f", "-"}, IsolateRuleset(s.ServerAddrs))
		if err == nil {
			return "isolated with nftables table inet vigil_isolate", nil
		}
		if s.Firewall != "" || !s.has("iptables-restore") {
			return out, fmt.Errorf("cannot isolate with nftables: %w", err)
		}
		// nft is there but failed (a kernel without nf_tables): the
		// iptables fallback.
		iout, ierr := s.isolateIptables(ctx)
		if ierr != nil {
			return out + iout, fmt.Errorf("cannot isolate with nftables (%v) nor with iptables: %w", err, ierr)
		}
		return fmt.Sprintf("nftables failed (%v: %s); %s", err, strings.TrimSpace(out), iout), nil
	case "iptables":
		return s.isolateIptables(ctx)
	}
	return "", fmt.Errorf("cannot isolate: unknown firewall %q (want nft or iptables)", s.Firewall)
}

// isolateIptables installs the chain VIGIL_ISOLATE for IPv4 and, when the
// device has IPv6, for IPv6. A failure undoes what was installed: a half
// isolation would leave the device reachable while reporting an error.
func (s *System) isolateIptables(ctx context.Context) (string, error) {
	var out strings.Builder
	out.WriteString("isolated with iptables chain " + IsolateChain)
	for _, f := range iptablesFamilies {
		if f.six && !exists(s.path("/proc/net/if_inet6")) {
			out.WriteString("; no IPv6 on this device, ip6tables not needed")
			continue
		}
		if !s.has(f.restore) {
			_, _ = s.restoreIptables(ctx)
			return "", fmt.Errorf("cannot isolate with iptables: %s not found", f.restore)
		}
		o, err := s.run(ctx, []string{f.restore, "--noflush"}, IptablesIsolateRules(s.ServerAddrs, f.six))
		if err != nil {
			_, _ = s.restoreIptables(ctx)
			return o, fmt.Errorf("cannot isolate with %s: %w", f.restore, err)
		}
		if f.six {
			out.WriteString(" and ip6tables")
		}
	}
	return out.String(), nil
}

// restore removes the isolation: the nftables table and, with iptables
// configured or found, the iptables and ip6tables chains. Absent ones
// are fine.
func (s *System) restore(ctx context.Context) (string, error) {
	nft := s.Firewall == "nft" || (s.Firewall == "" && s.has("nft"))
	ipt := s.Firewall == "iptables" || (s.Firewall == "" && s.has("iptables"))
	if !nft && !ipt {
		return "", errors.New("cannot restore: neither nft nor iptables found")
	}
	var done []string
	var failed error // the first failure; the other tool is still tried
	if nft {
		out, err := s.run(ctx, []string{"nft", "delete", "table", "inet", "vigil_isolate"}, "")
		if err != nil && !strings.Contains(out, "No such file") {
			failed = fmt.Errorf("cannot restore: cannot delete nftables table inet vigil_isolate: %w: %s", err, strings.TrimSpace(out))
		} else {
			done = append(done, "nftables table inet vigil_isolate")
		}
	}
	if ipt {
		out, err := s.restoreIptables(ctx)
		if err != nil && failed == nil {
			failed = fmt.Errorf("cannot restore: %w", err)
		} else if err == nil {
			done = append(done, out)
		}
	}
	if failed != nil {
		return strings.Join(done, ", "), failed
	}
	return "restored: " + strings.Join(done, " and ") + " removed", nil
}

// restoreIptables unhooks (every copy), flushes and deletes VIGIL_ISOLATE
// with iptables and ip6tables, and checks it is gone.
func (s *System) restoreIptables(ctx context.Context) (string, error) {
	var tools []string
	for _, f := range iptablesFamilies {
		if f.tool == "ip6tables" && !s.has(f.tool) {
			continue
		}
		for _, hook := range []string{"INPUT", "OUTPUT"} {
			for range 16 {
				if _, err := s.run(ctx, []string{f.tool, "-w", "-D", hook, "-j", IsolateChain}, ""); err != nil {
					break // no (more) jump
				}
			}
		}
		_, _ = s.run(ctx, []string{f.tool, "-w", "-F", IsolateChain}, "")
		_, _ = s.run(ctx, []string{f.tool, "-w", "-X", IsolateChain}, "")
		if _, err := s.run(ctx, []string{f.tool, "-w", "-n", "-L", IsolateChain}, ""); err == nil {
			return "", fmt.Errorf("cannot remove %s chain %s: it is still there", f.tool, IsolateChain)
		}
		tools = append(tools, f.tool)
	}
	return strings.Join(tools, "/") + " chain " + IsolateChain, nil
}
