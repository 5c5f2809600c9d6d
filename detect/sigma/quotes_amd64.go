//go:build !purego

package sigma

// maskBlocks writes the quote and backslash masks of n 64-byte blocks
// from p to q[0:n] and bs[0:n], and reports whether any of their bytes is
// a control character (below 0x20) (SSE2, quotes_amd64.s).
//
//go:noescape
func maskBlocks(p *byte, n int, q, bs *uint64) (ctl bool)
