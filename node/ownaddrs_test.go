package node

import (
	"fmt"
	"strings"
	"testing"
)

// TestOwnAddrs checks the server's own addresses taken from the config:
// server_addresses (addresses and networks), the listen address and the
// addresses among hosts; a bad entry is an error naming it.
func TestOwnAddrs(t *testing.T) {
	c := DefaultConfig()
	c.Listen = "10.1.2.3:8443"
	c.Hosts = []string{"vigil.example", "2001:db8::5"}
	c.ServerAddresses = []string{"192.0.2.7", "198.51.100.0/24", "::ffff:203.0.113.1"}
	got, err := c.ownAddrs()
	if err != nil {
		t.Fatal(err)
	}
	want := "[192.0.2.7/32 198.51.100.0/24 203.0.113.1/32 2001:db8::5/128 10.1.2.3/32]"
	if s := fmt.Sprint(got); s != want {
		t.Errorf("own addresses %s, want %s", s, want)
	}
	c.ServerAddresses = []string{"192.0.2.7", "vigil.example"}
	if _, err := c.ownAddrs(); err == nil || !strings.Contains(err.Error(), "server_addresses[1]") {
		t.Errorf("a name in server_addresses: %v, want an error naming server_addresses[1]", err)
	}
}
