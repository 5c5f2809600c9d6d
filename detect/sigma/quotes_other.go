//go:build !amd64 || purego

package sigma

// maskBlocks writes the quote and backslash masks of n 64-byte blocks
// from p to q[0:n] and bs[0:n], and reports whether any of their bytes is
// a control character (below 0x20).
func maskBlocks(p *byte, n int, q, bs *uint64) (ctl bool) { return maskBlocksGo(p, n, q, bs) }
