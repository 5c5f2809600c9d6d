package vuln

import (
	"strings"
)

// Ecosystem names a version scheme.
type Ecosystem string

// Version schemes.
const (
	Deb     Ecosystem = "deb"     // dpkg: epoch:upstream-revision, ~ sorts first
	Opkg    Ecosystem = "opkg"    // opkg/ipk: the dpkg algorithm
	APK     Ecosystem = "apk"     // Alpine apk: 1.2.3_rc1-r0
	SemVer  Ecosystem = "semver"  // semantic versioning 2.0 (leading v allowed)
	Generic Ecosystem = "generic" // firmware strings: numbers and letters, "9.8P19", "V5.5.3_build170725"
)

// EcosystemOf returns the version scheme of a purl type ("deb", "apk",
// "opkg", "ipk", "npm", "golang", "cargo", ...) or an OSV ecosystem name
// ("Debian:12", "Alpine:v3.19", "Wolfi", "npm"). Unknown ones are Generic.
func EcosystemOf(name string) Ecosystem {
	n := strings.ToLower(name)
	if i := strings.IndexByte(n, ':'); i >= 0 {
		n = n[:i]
	}
	switch n {
	case "deb", "debian", "ubuntu":
		return Deb
	case "opkg", "ipk", "openwrt":
		return Opkg
	case "apk", "alpine", "wolfi", "chainguard":
		return APK
	case "npm", "golang", "go", "cargo", "crates.io", "semver", "hex", "nuget", "pub":
		return SemVer
	}
	return Generic
}

// Compare compares two versions in a scheme: -1, 0 or +1.
func Compare(e Ecosystem, a, b string) int {
	switch e {
	case Deb, Opkg:
		return compareDeb(a, b)
	case APK:
		return compareAPK(a, b)
	case SemVer:
		return compareSemVer(a, b)
	}
	return compareGeneric(a, b)
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// --- dpkg ---

func splitDeb(v string) (epoch int, upstream, revision string) {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, ':'); i >= 0 {
		for _, c := range v[:i] {
			if c >= '0' && c <= '9' {
				epoch = epoch*10 + int(c-'0')
			}
		}
		v = v[i+1:]
	}
	upstream = v
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		upstream, revision = v[:i], v[i+1:]
	}
	return
}

// debUpstream is the upstream part of a dpkg version ("1:1.1.1n-0+deb11u4"
// → "1.1.1n"), for comparing with upstream version ranges.
func debUpstream(v string) string {
	_, u, _ := splitDeb(v)
	return u
}

func compareDeb(a, b string) int {
	ea, ua, ra := splitDeb(a)
	eb, ub, rb := splitDeb(b)
	if ea != eb {
		return sign(ea - eb)
	}
	if c := verrevcmp(ua, ub); c != 0 {
		return c
	}
	return verrevcmp(ra, rb)
}

func debOrder(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return 0
	case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
		return int(c)
	case c == '~':
		return -1
	case c == 0:
		return 0
	}
	return int(c) + 256
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// verrevcmp is dpkg's comparison of upstream versions or revisions.
func verrevcmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		first := 0
		for i < len(a) && !isDigit(a[i]) || j < len(b) && !isDigit(b[j]) {
			var ca, cb byte
			if i < len(a) {
				ca = a[i]
			}
			if j < len(b) {
				cb = b[j]
			}
			oa, ob := debOrder(ca), debOrder(cb)
			if i < len(a) && isDigit(ca) {
				oa = 0
			}
			if j < len(b) && isDigit(cb) {
				ob = 0
			}
			if oa != ob {
				return sign(oa - ob)
			}
			if i < len(a) {
				i++
			}
			if j < len(b) {
				j++
			}
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		for i < len(a) && isDigit(a[i]) && j < len(b) && isDigit(b[j]) {
			if first == 0 {
				first = int(a[i]) - int(b[j])
			}
			i++
			j++
		}
		if i < len(a) && isDigit(a[i]) {
			return 1
		}
		if j < len(b) && isDigit(b[j]) {
			return -1
		}
		if first != 0 {
			return sign(first)
		}
	}
	return 0
}

// --- apk ---

var apkSuffix = map[string]int{"alpha": -4, "beta": -3, "pre": -2, "rc": -1, "": 0, "cvs": 1, "svn": 2, "git": 3, "hg": 4, "p": 5}

type apkVer struct {
	nums     []string
	letter   byte
	suffixes [][2]string // name, number
	rev      string
}

func parseAPK(v string) apkVer {
	var r apkVer
	v = strings.TrimSpace(v)
	if i := strings.LastIndex(v, "-r"); i >= 0 {
		r.rev = v[i+2:]
		v = v[:i]
	}
	main := v
	if i := strings.IndexByte(v, '_'); i >= 0 {
		main = v[:i]
		for _, s := range strings.Split(v[i+1:], "_") {
			j := 0
			for j < len(s) && !isDigit(s[j]) {
				j++
			}
			r.suffixes = append(r.suffixes, [2]string{s[:j], s[j:]})
		}
	}
	if n := len(main); n > 0 && !isDigit(main[n-1]) {
		r.letter = main[n-1]
		main = main[:n-1]
	}
	r.nums = strings.Split(main, ".")
	return r
}

func cmpNum(a, b string) int {
	a = strings.TrimLeft(a, "0")
	b = strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return sign(len(a) - len(b))
	}
	return strings.Compare(a, b)
}

func compareAPK(a, b string) int {
	x, y := parseAPK(a), parseAPK(b)
	for i := 0; i < len(x.nums) || i < len(y.nums); i++ {
		if i >= len(x.nums) {
			return -1
		}
		if i >= len(y.nums) {
			return 1
		}
		if c := cmpNum(x.nums[i], y.nums[i]); c != 0 {
			return c
		}
	}
	if x.letter != y.letter {
		return sign(int(x.letter) - int(y.letter))
	}
	for i := 0; i < len(x.suffixes) || i < len(y.suffixes); i++ {
		var sx, sy [2]string
		if i < len(x.suffixes) {
			sx = x.suffixes[i]
		}
		if i < len(y.suffixes) {
			sy = y.suffixes[i]
		}
		if c := sign(apkSuffix[sx[0]] - apkSuffix[sy[0]]); c != 0 {
			return c
		}
		if c := cmpNum(sx[1], sy[1]); c != 0 {
			return c
		}
	}
	return cmpNum(x.rev, y.rev)
}

// --- semver ---

func compareSemVer(a, b string) int {
	split := func(v string) (core []string, pre string) {
		v = strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(v), "v"), "V")
		if i := strings.IndexByte(v, '+'); i >= 0 {
			v = v[:i]
		}
		if i := strings.IndexByte(v, '-'); i >= 0 {
			v, pre = v[:i], v[i+1:]
		}
		core = strings.Split(v, ".")
		for len(core) < 3 {
			core = append(core, "0")
		}
		return
	}
	ca, pa := split(a)
	cb, pb := split(b)
	for i := 0; i < len(ca) || i < len(cb); i++ {
		x, y := "0", "0"
		if i < len(ca) {
			x = ca[i]
		}
		if i < len(cb) {
			y = cb[i]
		}
		if c := cmpNum(x, y); c != 0 {
			return c
		}
	}
	switch {
	case pa == pb:
		return 0
	case pa == "":
		return 1
	case pb == "":
		return -1
	}
	xa, xb := strings.Split(pa, "."), strings.Split(pb, ".")
	for i := 0; i < len(xa) && i < len(xb); i++ {
		na, nb := allDigits(xa[i]), allDigits(xb[i])
		var c int
		switch {
		case na && nb:
			c = cmpNum(xa[i], xb[i])
		case na:
			c = -1
		case nb:
			c = 1
		default:
			c = strings.Compare(xa[i], xb[i])
		}
		if c != 0 {
			return c
		}
	}
	return sign(len(xa) - len(xb))
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// --- generic firmware strings ---

// preRelease words make a version smaller than the same version without
// them ("1.2 beta" < "1.2"); any other trailing word makes it larger
// ("9.8P19" > "9.8").
var preRelease = map[string]bool{"alpha": true, "beta": true, "rc": true, "pre": true, "dev": true, "snapshot": true}

func tokens(v string) []string {
	v = strings.ToLower(strings.TrimSpace(v))
	if len(v) > 1 && v[0] == 'v' && isDigit(v[1]) {
		v = v[1:]
	}
	var out []string
	for i := 0; i < len(v); {
		c := v[i]
		j := i
		switch {
		case isDigit(c):
			for j < len(v) && isDigit(v[j]) {
				j++
			}
		case c >= 'a' && c <= 'z':
			for j < len(v) && v[j] >= 'a' && v[j] <= 'z' {
				j++
			}
		default:
			i++
			continue
		}
		out = append(out, v[i:j])
		i = j
	}
	return out
}

func compareGeneric(a, b string) int {
	ta, tb := tokens(a), tokens(b)
	for i := 0; i < len(ta) || i < len(tb); i++ {
		if i >= len(ta) {
			if preRelease[tb[i]] {
				return 1
			}
			return -1
		}
		if i >= len(tb) {
			if preRelease[ta[i]] {
				return -1
			}
			return 1
		}
		x, y := ta[i], tb[i]
		dx, dy := isDigit(x[0]), isDigit(y[0])
		var c int
		switch {
		case dx && dy:
			c = cmpNum(x, y)
		case dx: // a number sorts after a word at the same place: 1.2.3 > 1.2.beta
			c = 1
		case dy:
			c = -1
		default:
			c = strings.Compare(x, y)
		}
		if c != 0 {
			return c
		}
	}
	return 0
}
