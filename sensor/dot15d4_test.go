package sensor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// keyInClear is an 802.15.4 data frame carrying a Zigbee Transport-Key
// with a network key, neither NWK nor APS encrypted.
func keyInClear() []byte {
	b := []byte{0x41, 0x88, 7, 0x62, 0x1a, 0x00, 0x00, 0x01, 0x00}
	b = append(b, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 30, 9)
	b = append(b, 0x01, 0x42, 0x05, 0x01)
	b = append(b, make([]byte, 33)...)
	return b
}

func TestDot15d4LinkTypes(t *testing.T) {
	frames := map[int][]byte{
		Link802154FCS:   append(keyInClear(), 0xaa, 0xbb),
		Link802154NoFCS: keyInClear(),
		// TAP: version 0, header length 12, TLV FCS type (0) = 1 (16-bit).
		Link802154TAP:    append([]byte{0, 0, 12, 0, 0, 0, 1, 0, 1, 0, 0, 0}, append(keyInClear(), 0xaa, 0xbb)...),
		Link802154NonASK: append([]byte{0, 0, 0, 0, 0xa7, byte(len(keyInClear()) + 2)}, append(keyInClear(), 0xaa, 0xbb)...),
	}
	for link, fr := range frames {
		name := filepath.Join(t.TempDir(), "z.pcap")
		fh, _ := os.Create(name)
		w := pcapgo.NewWriter(fh)
		w.WriteFileHeader(65535, layers.LinkType(link))
		w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, 0), CaptureLength: len(fr), Length: len(fr)}, fr)
		fh.Close()
		evs, st := runPcap(t, Config{}, name)
		if len(evs) != 2 || evs[0].Fields["anomaly.event"] != "network_key_in_clear" ||
			evs[1].Fields["zigbee.aps.key_type"] != "network" || st.Undecoded != 0 {
			t.Errorf("link %d: %+v %+v", link, evs, st)
		}
	}
}

func TestZigbeeDiscovery(t *testing.T) {
	// A data frame from short 0x0001 whose NWK header carries the source
	// IEEE address b8:27:eb:00:00:00:00:01 (Raspberry Pi's OUI).
	fr := []byte{0x41, 0x88, 7, 0x62, 0x1a, 0x00, 0x00, 0x01, 0x00,
		0x08, 0x10, 0x00, 0x00, 0x01, 0x00, 30, 9, 1, 0, 0, 0, 0, 0xeb, 0x27, 0xb8,
		0x00, 1, 0x06, 0x00, 0x04, 0x01, 1, 5}
	name := filepath.Join(t.TempDir(), "z.pcap")
	fh, _ := os.Create(name)
	w := pcapgo.NewWriter(fh)
	w.WriteFileHeader(65535, layers.LinkType(Link802154NoFCS))
	w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, 0), CaptureLength: len(fr), Length: len(fr)}, fr)
	fh.Close()
	o, _ := ParseOUI(strings.NewReader("B8-27-EB   (hex)\t\tRaspberry Pi Foundation\n"))
	evs, _ := runPcap(t, Config{OUI: o}, name)
	if len(evs) != 2 || evs[0].Kind != "inventory" || evs[0].DeviceID != "ieee:b8:27:eb:00:00:00:00:01" ||
		evs[0].Fields["device.vendor"] != "Raspberry Pi Foundation" || evs[0].Fields["device.zigbee.short_address"] != "0x0001" ||
		evs[0].Fields["device.zigbee.pan_id"] != "0x1a62" || evs[1].DeviceID != "ieee:b8:27:eb:00:00:00:00:01" {
		t.Fatalf("%+v", evs)
	}
}
