package zigbee

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	vigil "github.com/vigil-iot/vigil"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// TestCCMVector1 is RFC 3610's packet vector #1 (M=8, L=2).
func TestCCMVector1(t *testing.T) {
	var key [16]byte
	copy(key[:], unhex("c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"))
	var nonce [13]byte
	copy(nonce[:], unhex("00000003020100a0a1a2a3a4a5"))
	aad := unhex("0001020304050607")
	plain := unhex("08090a0b0c0d0e0f101112131415161718191a1b1c1d1e")
	want := unhex("588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0")
	got, _ := ccm(key, nonce, aad, plain, false, 8)
	if !bytes.Equal(got, want) {
		t.Fatalf("encrypt %x, want %x", got, want)
	}
	back, ok := ccm(key, nonce, aad, want, true, 8)
	if !ok || !bytes.Equal(back, plain) {
		t.Fatalf("decrypt %x %v", back, ok)
	}
	want[3] ^= 1
	if _, ok := ccm(key, nonce, aad, want, true, 8); ok {
		t.Fatal("tampered ciphertext verified")
	}
}

// TestMMOHash is the Zigbee specification's MMO hash test vector (C.5.1).
func TestMMOHash(t *testing.T) {
	if h := mmoHash([]byte{0xc0}); hex.EncodeToString(h[:]) != "ae3a102a28d43ee0d4a09e22788b206c" {
		t.Fatalf("%x", h)
	}
}

// encryptedTransportKey builds an 802.15.4 frame carrying a Zigbee NWK
// data frame with an APS Transport-Key command (a network key, 01..10)
// encrypted under the key-transport key of the well-known link key, as
// a trust centre sends it to a joining device.
func encryptedTransportKey() []byte {
	mac := []byte{0x41, 0x88, 1, 0x62, 0x1a, 0x34, 0x12, 0x00, 0x00}
	nwk := []byte{0x08, 0x00, 0x34, 0x12, 0x00, 0x00, 30, 1}
	tcLE := []byte{0x04, 0x03, 0x02, 0x01, 0x00, 0x4b, 0x12, 0x00}
	apsHdr := []byte{0x21, 0x10}
	auxHdr := append([]byte{0x30, 1, 0, 0, 0}, tcLE...)
	plain := append([]byte{0x05, 0x01}, unhex("0102030405060708090a0b0c0d0e0f10")...)
	plain = append(plain, 0)
	plain = append(plain, make([]byte, 8)...)
	plain = append(plain, tcLE...)
	var nonce [13]byte
	copy(nonce[:], tcLE)
	nonce[8] = 1 // frame counter 1, little-endian
	nonce[12] = 0x35
	aad := append(append([]byte{}, apsHdr...), auxHdr...)
	aad[2] = 0x35
	ct, _ := ccmStar(keyTransportKey(WellKnownLinkKey), nonce, aad, plain, false)
	b := append(append(append(mac, nwk...), apsHdr...), auxHdr...)
	return append(b, ct...)
}

func TestDefaultLinkKeyTransportKeyIsFlagged(t *testing.T) {
	s := decode(encryptedTransportKey())
	if len(s) != 2 || s[0].Fields["anomaly.event"] != AnomalyDefaultLinkKey || s[0].Severity != vigil.SeverityHigh ||
		s[1].Fields["zigbee.aps.key_type"] != "network" || s[1].Fields["zigbee.aps.decrypted_with"] != "default_link_key" {
		t.Fatalf("%+v", s)
	}
	// A corrupted MIC is not decrypted.
	fr := encryptedTransportKey()
	fr[len(fr)-1] ^= 1
	if s := decode(fr); len(s) != 1 || s[0].Fields["zigbee.aps.decrypted_with"] != nil {
		t.Fatalf("%+v", s)
	}
}

// TestDefaultLinkKeyAgainstTshark checks the nonce, associated data and
// key derivation with Wireshark: given the well-known key, tshark must
// decrypt the frame built above and find the Transport-Key and its key.
func TestDefaultLinkKeyAgainstTshark(t *testing.T) {
	bin, err := exec.LookPath("tshark")
	if err != nil {
		t.Skipf("tshark not installed: %v", err)
	}
	fr := encryptedTransportKey()
	// pcap: global header (link type 230, 802.15.4 without FCS) and one record.
	pcap := []byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 230, 0, 0, 0}
	rec := make([]byte, 16)
	binary.LittleEndian.PutUint32(rec[8:], uint32(len(fr)))
	binary.LittleEndian.PutUint32(rec[12:], uint32(len(fr)))
	pcap = append(append(pcap, rec...), fr...)
	name := filepath.Join(t.TempDir(), "zb.pcap")
	if err := os.WriteFile(name, pcap, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-r", name, "-V", "-o", `uat:zigbee_pc_keys:"5A6967426565416C6C69616E63653039","Normal","ZigBeeAlliance09"`).CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v: %s", err, out)
	}
	if !bytes.Contains(out, []byte("Transport Key")) || !bytes.Contains(out, []byte("Key: 0102030405060708090a0b0c0d0e0f10")) {
		t.Fatalf("tshark did not decrypt the frame:\n%s", out)
	}
}
