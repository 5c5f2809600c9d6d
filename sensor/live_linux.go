package sensor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gopacket/gopacket/afpacket"
)

// readLive captures from an interface through AF_PACKET (TPACKET_V3, no
// libpcap) until ctx is done. Flows idle past the timeout are ended on
// the wall clock while the interface is quiet.
func (e *engine) readLive(ctx context.Context, iface string) error {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return fmt.Errorf("cannot capture on %s: %w", iface, err)
	}
	link := LinkEthernet
	if ifc.Flags&net.FlagLoopback == 0 && len(ifc.HardwareAddr) != 6 {
		link = LinkRaw // tun and other layer-3 devices
	}
	h, err := afpacket.NewTPacket(
		afpacket.OptInterface(iface),
		afpacket.OptFrameSize(1<<16),
		afpacket.OptBlockSize(1<<20),
		afpacket.OptNumBlocks(16),
		afpacket.OptPollTimeout(200*time.Millisecond),
		afpacket.OptBlockTimeout(100*time.Millisecond),
	)
	if err != nil {
		return fmt.Errorf("cannot open AF_PACKET socket on %s: %w", iface, err)
	}
	defer h.Close()
	e.cfg.Logger.Info("capturing", "iface", iface)
	lastFlush := time.Now()
	for {
		if err := ctx.Err(); err != nil {
			e.finish("capture_end")
			return nil
		}
		data, ci, err := h.ZeroCopyReadPacketData()
		now := time.Now()
		switch {
		case errors.Is(err, afpacket.ErrTimeout):
			e.expire(now)
			e.flush()
			lastFlush = now
			continue
		case err != nil:
			e.finish("capture_end")
			return fmt.Errorf("cannot read from %s: %w", iface, err)
		}
		ts := ci.Timestamp
		if ts.IsZero() {
			ts = now
		}
		e.packet(link, data, ts, ci.Length)
		if e.err != nil {
			return nil
		}
		if now.Sub(lastFlush) > time.Second {
			e.flush()
			lastFlush = now
		}
	}
}
