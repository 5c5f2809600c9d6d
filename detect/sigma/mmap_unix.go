//go:build linux || darwin || freebsd

package sigma

import (
	"io"
	"os"
	"syscall"
)

// mapFile maps a regular file read-only, so that offline detection reads
// lines in place instead of copying them through read(2). ok is false when
// r is not a mappable file; the caller then reads it as a stream.
func mapFile(r io.Reader) (data []byte, unmap func(), ok bool) {
	f, isFile := r.(*os.File)
	if !isFile {
		return nil, nil, false
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() <= 0 || fi.Size() > 1<<40 {
		return nil, nil, false
	}
	// The mapping starts at the current offset's page, for a file already
	// partly read; the common case is offset zero.
	off, err := f.Seek(0, io.SeekCurrent)
	if err != nil || off != 0 {
		return nil, nil, false
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_PRIVATE|mapPopulate)
	if err != nil {
		return nil, nil, false
	}
	return b, func() { syscall.Munmap(b) }, true
}
