//go:build !amd64 || purego

package sigma

// maskBlocks writes the quote and backslash masks of n 64-byte blocks
// from p to q[0:n] and bs[0:n].
func maskBlocks(p *byte, n int, q, bs *uint64) { maskBlocksGo(p, n, q, bs) }
