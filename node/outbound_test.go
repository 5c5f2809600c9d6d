package node

import (
	"net/netip"
	"strings"
	"testing"
)

// TestOutboundAllowConfig: outbound.allow takes CIDRs, addresses and host
// names; anything else fails validation naming the key.
func TestOutboundAllowConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Outbound.Allow = []string{"10.20.0.0/16", "127.0.0.1", "::1", "feeds.corp.example"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := cfg.egress().Check(netip.MustParseAddr("10.20.1.1")); err != nil {
		t.Errorf("an allowed address: %v", err)
	}
	if err := cfg.egress().Check(netip.MustParseAddr("10.21.1.1")); err == nil {
		t.Error("a private address outside the allowed prefix passed")
	}
	cfg.Outbound.Allow = []string{"10.0.0.0/33"}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "outbound.allow") {
		t.Errorf("bad entry: %v", err)
	}
}
