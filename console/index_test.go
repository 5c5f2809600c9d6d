package console

import (
	"net/url"
	"testing"

	"github.com/vigil-iot/vigil"
)

// TestSiteFacet: the site facet counts devices by their "site:" tag, and
// selecting a site keeps its devices only.
func TestSiteFacet(t *testing.T) {
	x := &deviceIndex{devices: []vigil.Device{
		{ID: "cam-1", Class: "camera", Tags: []string{"site:plant-3", "criticality:high"}},
		{ID: "cam-2", Class: "camera", Tags: []string{"site:plant-3"}},
		{ID: "plc-1", Class: "plc", Tags: []string{"site:harbour"}},
		{ID: "gw-1", Class: "gateway"},
	}}
	res := x.search(url.Values{}, 0, 50)
	if res.total != 4 || res.facets[0].Name != "site" {
		t.Fatalf("total %d, first facet %+v", res.total, res.facets[0])
	}
	got := map[string]int{}
	for _, v := range res.facets[0].Values {
		got[v.Value] = v.Count
	}
	if got["plant-3"] != 2 || got["harbour"] != 1 || got[""] != 1 {
		t.Fatalf("site counts %v", got)
	}
	res = x.search(url.Values{"site": {"plant-3"}}, 0, 50)
	if res.total != 2 || res.devices[0].ID != "cam-1" || res.devices[1].ID != "cam-2" {
		t.Fatalf("site plant-3: %d devices %+v", res.total, res.devices)
	}
	// A fleet without site tags shows no site facet.
	x = &deviceIndex{devices: []vigil.Device{{ID: "a", Class: "camera"}, {ID: "b", Class: "plc"}}}
	for _, f := range x.search(url.Values{}, 0, 50).facets {
		if f.Name == "site" {
			t.Errorf("a site facet without sites: %+v", f)
		}
	}
}
