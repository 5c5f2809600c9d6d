package sigma

import (
	"math/rand"
	"strings"
	"testing"
	"unicode/utf8"
)

// globMatchSlow is the plain backtracking matcher globMatch must agree
// with: a star tries every rune.
func globMatchSlow(toks []globTok, s string) bool {
	ti, si := 0, 0
	starT, starS := -1, 0
	for {
		if ti < len(toks) {
			t := toks[ti]
			switch {
			case t.star:
				starT, starS = ti, si
				ti++
				continue
			case t.one:
				if si < len(s) {
					_, n := utf8.DecodeRuneInString(s[si:])
					si += n
					ti++
					continue
				}
			default:
				if len(s)-si >= len(t.lit) && s[si:si+len(t.lit)] == t.lit {
					si += len(t.lit)
					ti++
					continue
				}
			}
		} else if si == len(s) {
			return true
		}
		if starT < 0 || starS >= len(s) {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[starS:])
		starS += n
		ti, si = starT+1, starS
	}
}

func TestGlobMatchAgrees(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	alpha := []string{"a", "b", "ab", "é", "\xff", "ba", "\xa9", "\xa9a"}
	for i := 0; i < 200000; i++ {
		var toks []globTok
		for j := r.Intn(5); j >= 0; j-- {
			switch r.Intn(3) {
			case 0:
				toks = append(toks, globTok{star: true})
			case 1:
				toks = append(toks, globTok{one: true})
			default:
				toks = append(toks, globTok{lit: alpha[r.Intn(len(alpha))]})
			}
		}
		s := ""
		for j := r.Intn(8); j > 0; j-- {
			s += alpha[r.Intn(len(alpha))]
		}
		if got, want := globMatch(toks, s), globMatchSlow(toks, s); got != want {
			t.Fatalf("%+v on %q: %v, want %v", toks, s, got, want)
		}
	}
}

func TestLowerOfAgrees(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	alpha := "aZ/-. 09AzéÉ\x7f@[`{"
	c := newEvalCtx(1)
	for i := 0; i < 100000; i++ {
		b := make([]byte, r.Intn(40))
		for j := range b {
			b[j] = alpha[r.Intn(len(alpha))]
		}
		s := string(b)
		if got, want := c.lowerOf(s), strings.ToLower(s); got != want {
			t.Fatalf("lowerOf(%q) = %q, want %q", s, got, want)
		}
		if i%100 == 0 {
			c.arena = c.arena[:0]
		}
	}
}
