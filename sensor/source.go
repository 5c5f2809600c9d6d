package sensor

import (
	"time"

	"github.com/gopacket/gopacket/pcapgo"
)

// source yields captured frames: data (valid until the next call),
// capture time, length on the wire and link type.
type source interface {
	next() (data []byte, ts time.Time, wire int, link int, err error)
}

type pcapSource struct{ r *pcapgo.Reader }

func (s pcapSource) next() ([]byte, time.Time, int, int, error) {
	data, ci, err := s.r.ZeroCopyReadPacketData()
	return data, ci.Timestamp, ci.Length, int(s.r.LinkType()), err
}

type ngSource struct{ r *pcapgo.NgReader }

func (s ngSource) next() ([]byte, time.Time, int, int, error) {
	data, ci, err := s.r.ZeroCopyReadPacketData()
	if err != nil {
		return nil, time.Time{}, 0, 0, err
	}
	link := int(s.r.LinkType())
	if ifc, ierr := s.r.Interface(ci.InterfaceIndex); ierr == nil {
		link = int(ifc.LinkType)
	}
	return data, ci.Timestamp, ci.Length, link, nil
}
