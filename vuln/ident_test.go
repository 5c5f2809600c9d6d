package vuln

import "testing"

func TestParsePURL(t *testing.T) {
	f := func(s, key, version string) {
		t.Helper()
		p, err := ParsePURL(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if p.Key() != key || p.Version != version {
			t.Errorf("%s: key %q version %q, want %q %q", s, p.Key(), p.Version, key, version)
		}
	}
	f("pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12", "deb/debian/openssl", "3.0.11-1~deb12u2")
	f("pkg:apk/chainguard/haproxy-2.2?arch=x86_64", "apk/chainguard/haproxy-2.2", "")
	f("pkg:apk/alpine/busybox@1.36.1-r5", "apk/alpine/busybox", "1.36.1-r5")
	f("pkg:opkg/openwrt/dropbear@2022.82-2", "opkg/openwrt/dropbear", "2022.82-2")
	f("pkg:ipk/openwrt/dnsmasq@2.90-1", "opkg/openwrt/dnsmasq", "2.90-1")
	f("pkg:npm/%40angular/core@16.0.0", "npm/@angular/core", "16.0.0")
	f("pkg:golang/github.com/eclipse/paho.mqtt.golang@v1.4.3", "golang/github.com/eclipse/paho.mqtt.golang", "v1.4.3")
	f("pkg:generic/openssl@1.1.1w", "generic//openssl", "1.1.1w")
	for _, s := range []string{"pkg:npm/%40angular/core@16.0.0", "pkg:golang/github.com/eclipse/paho.mqtt.golang@v1.4.3",
		"pkg:generic/a%25b/c%3F%23%40%2Fd@1%401%3F", "pkg:deb/debian/openssl@3.0.11-1~deb12u2"} {
		p, err := ParsePURL(s)
		if err != nil || p.String() != s {
			t.Errorf("%s reads back as %s (%v)", s, p.String(), err)
		}
	}
	for _, bad := range []string{"openssl", "pkg:deb", "pkg:/x", "pkg:npm/x@%zz"} {
		if _, err := ParsePURL(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestParseCPE(t *testing.T) {
	c, err := ParseCPE(`cpe:2.3:a:netapp:clustered_data_ontap:9.8:p7:*:*:*:*:*:*`)
	if err != nil || c.Key() != "netapp:clustered_data_ontap" || c.Version != "9.8" || c.Update != "p7" {
		t.Fatalf("%+v %v", c, err)
	}
	c, err = ParseCPE(`cpe:2.3:o:hikvision:ds-2cd2042wd_firmware:v5.4.5\:build\_170124:*:*:*:*:*:*:*`)
	if err != nil || c.Version != "v5.4.5:build_170124" || c.Part != "o" {
		t.Fatalf("escapes: %+v %v", c, err)
	}
	c, err = ParseCPE("cpe:/a:lighttpd:lighttpd:1.4.59")
	if err != nil || c.Key() != "lighttpd:lighttpd" || c.Version != "1.4.59" || c.Update != "*" {
		t.Fatalf("2.2: %+v %v", c, err)
	}
	for _, bad := range []string{"cpe:2.3:a:x", "cpe:2.3:q:v:p:*:*:*:*:*:*:*:*", "cpe:2.3:a:*:p:*:*:*:*:*:*:*:*", "x"} {
		if _, err := ParseCPE(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
