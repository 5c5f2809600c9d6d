package scan

import (
	"strings"

	"github.com/vigil-iot/vigil"
)

// Banners maps server software names, as they appear in banners (HTTP
// Server headers, SSH identification strings), to their CPE vendor:product.
// Only names listed here become components; the table is explicit so that
// a banner never matches by similarity.
var Banners = map[string]string{
	"lighttpd": "lighttpd:lighttpd", "nginx": "f5:nginx", "apache": "apache:http_server", "boa": "boa:boa",
	"goahead-webs": "embedthis:goahead", "goahead": "embedthis:goahead", "mini_httpd": "acme:mini_httpd", "thttpd": "acme:thttpd",
	"micro_httpd": "acme:micro_httpd", "mongoose": "cesanta:mongoose", "uhttpd": "openwrt:uhttpd", "dropbear": "dropbear_ssh_project:dropbear_ssh",
	"openssh": "openbsd:openssh", "mosquitto": "eclipse:mosquitto", "webs": "embedthis:goahead",
}

// BannerComponent turns a banner ("lighttpd/1.4.59", "Apache/2.4.41
// (Ubuntu)", "SSH-2.0-dropbear_2020.81", "SSH-2.0-OpenSSH_8.2p1 Ubuntu-4")
// into a component with a CPE, when its product is in Banners and it
// carries a version. The component's Source is "banner".
func BannerComponent(banner string) (vigil.Component, bool) {
	b := strings.TrimSpace(banner)
	if rest, ok := strings.CutPrefix(b, "SSH-2.0-"); ok {
		b = strings.Replace(rest, "_", "/", 1)
	} else if rest, ok := strings.CutPrefix(b, "SSH-1.99-"); ok {
		b = strings.Replace(rest, "_", "/", 1)
	}
	if i := strings.IndexAny(b, " \t("); i >= 0 {
		b = b[:i]
	}
	name, ver, ok := strings.Cut(b, "/")
	if !ok || ver == "" {
		return vigil.Component{}, false
	}
	key, ok := Banners[strings.ToLower(name)]
	if !ok {
		return vigil.Component{}, false
	}
	vendor, product, _ := strings.Cut(key, ":")
	if strings.IndexAny(ver, "0123456789") != 0 {
		return vigil.Component{}, false
	}
	return vigil.Component{Name: strings.ToLower(name), Version: ver, Type: "application", Source: "banner",
		CPE: "cpe:2.3:a:" + vendor + ":" + product + ":" + ver + ":*:*:*:*:*:*:*"}, true
}
