package sensor

import (
	"os"
	"syscall"
)

// mapFile maps a regular file into memory, privately: a decoder that
// writes into packet bytes gets its own copy of the page, and the file is
// never modified. It fails for files that cannot be mapped (empty,
// special, too large for the address space); the caller then reads the
// file as a stream.
func mapFile(fh *os.File, size int64) ([]byte, func(), error) {
	if size <= 0 || int64(int(size)) != size {
		return nil, nil, syscall.EINVAL
	}
	b, err := syscall.Mmap(int(fh.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE)
	if err != nil {
		return nil, nil, err
	}
	_ = syscall.Madvise(b, syscall.MADV_SEQUENTIAL)
	return b, func() { _ = syscall.Munmap(b) }, nil
}
