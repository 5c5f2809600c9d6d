package sensor

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vigil "github.com/vigil-iot/vigil"

	"github.com/gopacket/gopacket/pcapgo"
)

// TestMemPcapMatchesPcapgo reads every classic pcap of the corpus, and
// damaged copies of one, with the in-memory reader and with pcapgo: the
// same packets, times, lengths and link types, and an error where pcapgo
// has one.
func TestMemPcapMatchesPcapgo(t *testing.T) {
	var files [][]byte
	root := corpusDir(t, "pcap")
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".pcap") {
			b, err := os.ReadFile(p)
			if err == nil && isPlainPcap(b) {
				files = append(files, b)
			}
		}
		return nil
	})
	if len(files) == 0 {
		t.Fatal("no classic pcap in the corpus")
	}
	base := files[0]
	le := binary.LittleEndian.Uint32(base) == pcapMagicMicro || binary.LittleEndian.Uint32(base) == pcapMagicNano
	put := func(b []byte, off int, v uint32) {
		if le {
			binary.LittleEndian.PutUint32(b[off:], v)
		} else {
			binary.BigEndian.PutUint32(b[off:], v)
		}
	}
	damaged := func(f func(b []byte)) []byte {
		b := bytes.Clone(base)
		f(b)
		return b
	}
	files = append(files,
		base[:len(base)-3], // last record cut
		base[:24+10],       // first record header cut
		base[:24],          // no packets
		damaged(func(b []byte) { put(b, 24+8, 1<<20) }),      // capture length above the snap length
		damaged(func(b []byte) { put(b, 24+12, 1) }),         // capture length above the wire length
		damaged(func(b []byte) { put(b, 24+4, 0xffffffff) }), // timestamp fraction out of range
		damaged(func(b []byte) { b[4] = 3 }),                 // version
	)
	for i, b := range files {
		want := readAll(t, b, func() (source, error) {
			r, err := pcapgo.NewReader(bytes.NewReader(b))
			if err != nil {
				return nil, err
			}
			return pcapSource{r}, nil
		})
		got := readAll(t, b, func() (source, error) {
			r, err := newMemPcap(b)
			if err != nil {
				return nil, err
			}
			return r, nil
		})
		if got != want {
			t.Errorf("file %d: in memory\n%s\npcapgo\n%s", i, got, want)
		}
	}
}

// readAll renders what a source yields, up to its first error (its kind
// only: EOF, cut, other).
func readAll(t *testing.T, b []byte, open func() (source, error)) string {
	src, err := open()
	if err != nil {
		return "header error"
	}
	var sb strings.Builder
	for {
		data, ts, wire, link, err := src.next()
		switch {
		case err == io.EOF:
			return sb.String() + "EOF"
		case err == io.ErrUnexpectedEOF:
			return sb.String() + "cut"
		case err != nil:
			return sb.String() + "error " + err.Error()
		}
		fmt.Fprintf(&sb, "%s link=%d wire=%d %x\n", ts.Format(time.RFC3339Nano), link, wire, data)
	}
}

// shrinker truncates a file when it is first called.
type shrinker struct {
	name string
	done bool
}

func (s *shrinker) PublishEvents(_ context.Context, _ []vigil.Event) error {
	if !s.done {
		s.done = true
		return os.Truncate(s.name, 100)
	}
	return nil
}

// TestMappedCaptureShrinks checks that a capture file cut shorter while
// the sensor reads it (mapped in memory) ends the run with an error
// naming it, not a crash.
func TestMappedCaptureShrinks(t *testing.T) {
	name := mixedCapture(t, 200)
	st, err := Run(context.Background(), Config{Pcaps: []string{name}, Publisher: &shrinker{name: name}, BatchSize: 1, DisableDiscovery: true})
	if err == nil || !strings.Contains(err.Error(), "shrank") || !strings.Contains(err.Error(), name) {
		t.Fatalf("err %v, stats %+v", err, st)
	}
}
