package vuln

import "testing"

func TestCompare(t *testing.T) {
	f := func(e Ecosystem, a, b string, want int) {
		t.Helper()
		if got := Compare(e, a, b); got != want {
			t.Errorf("%s: Compare(%q, %q) = %d, want %d", e, a, b, got, want)
		}
		if got := Compare(e, b, a); got != -want {
			t.Errorf("%s: Compare(%q, %q) = %d, want %d", e, b, a, got, -want)
		}
	}
	// dpkg, with strings from Debian and Ubuntu archives.
	f(Deb, "1.1.1n-0+deb11u4", "1.1.1n-0+deb11u5", -1)
	f(Deb, "3.0.11-1~deb12u2", "3.0.11-1", -1)
	f(Deb, "1:9.2p1-2+deb12u3", "9.9p1-1", 1) // epoch wins
	f(Deb, "2.36.1-8+deb11u1", "2.36.1-8+deb11u1", 0)
	f(Deb, "1.0~rc1-1", "1.0-1", -1)
	f(Deb, "7.88.1-10+deb12u5", "7.88.1-10+deb12u12", -1)
	f(Deb, "1.2.11.dfsg-2+deb11u2", "1.2.13.dfsg-1", -1)
	f(Deb, "2:8.2.2434-3+deb11u1", "2:8.2.2434-3", 1)
	f(Deb, "1.0a", "1.0", 1)
	f(Deb, "1.0", "1.0+b1", -1)
	// opkg (OpenWrt), same algorithm.
	f(Opkg, "2022.82-2", "2024.86-1", -1)
	f(Opkg, "1.36.1-1", "1.36.1-2", -1)
	f(Opkg, "2.90-r1", "2.89-r7", 1)
	// apk, from Alpine, Wolfi and Chainguard.
	f(APK, "2.2.33-r0", "2.2.34-r0", -1)
	f(APK, "3.0.10-r0", "3.0.9-r3", 1)
	f(APK, "1.36.1-r5", "1.36.1-r15", -1)
	f(APK, "3.1.4_rc1-r0", "3.1.4-r0", -1)
	f(APK, "9.6_p1-r0", "9.6-r0", 1)
	f(APK, "1.2.3a-r0", "1.2.3-r0", 1)
	f(APK, "8.11.1-r0", "8.11.1-r0", 0)
	// semver.
	f(SemVer, "1.2.3", "1.10.0", -1)
	f(SemVer, "v2.0.0", "2.0.0", 0)
	f(SemVer, "1.0.0-alpha", "1.0.0-alpha.1", -1)
	f(SemVer, "1.0.0-alpha.beta", "1.0.0-beta", -1)
	f(SemVer, "1.0.0-rc.1", "1.0.0", -1)
	f(SemVer, "1.0.0-2", "1.0.0-11", -1)
	f(SemVer, "1.0.0+build.5", "1.0.0", 0)
	// firmware strings from NVD and vendor notes.
	f(Generic, "9.8P19", "9.8", 1)
	f(Generic, "9.8P7", "9.8P19", -1)
	f(Generic, "9.10.1P12", "9.9.1P16", 1)
	f(Generic, "V5.5.0 build 170725", "V5.5.3", -1)
	f(Generic, "5.5.53", "5.5.6", 1)
	f(Generic, "1.2.0-beta", "1.2.0", -1)
	f(Generic, "2.0.0.1", "2.0", 1)
	f(Generic, "R7000-V1.0.11.134", "R7000-V1.0.11.136", -1)
	f(Generic, "1.4.59", "1.4.59", 0)
	f(Generic, "V1.0.0.62_1.0.40", "V1.0.0.62_1.0.38", 1)
}
