package twin

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseTopic(t *testing.T) {
	f := func(topic string, want Topic, ok bool) {
		t.Helper()
		got, gotOK := ParseTopic(topic)
		if gotOK != ok || got != want {
			t.Errorf("ParseTopic(%q) = %+v %v, want %+v %v", topic, got, gotOK, want, ok)
		}
	}
	f("$aws/things/cam-0042/shadow/update", Topic{Platform: PlatformAWS, Thing: "cam-0042"}, true)
	f("$aws/things/cam-0042/shadow/name/heater/update", Topic{Platform: PlatformAWS, Thing: "cam-0042", Shadow: "heater"}, true)
	f("$iothub/twin/PATCH/properties/desired/?$version=12", Topic{Platform: PlatformAzure, Section: Desired}, true)
	f("$iothub/twin/PATCH/properties/reported/?$rid=4", Topic{Platform: PlatformAzure, Section: Reported}, true)
	f("$aws/things/cam-0042/shadow/update/accepted", Topic{}, false)
	f("$aws/things/cam-0042/shadow/update/delta", Topic{}, false)
	f("$aws/things/cam-0042/shadow/name//update", Topic{}, false)
	f("$aws/things/0/shadow/name/update", Topic{}, false) // found by FuzzParseTopic: prefix and suffix overlap
	f("$aws/things/cam-0042/shadow/name/a/b/update", Topic{}, false)
	f("$aws/things//shadow/update", Topic{}, false)
	f("$iothub/twin/PATCH/properties/other/", Topic{}, false)
	f("$iothub/twin/GET/?$rid=1", Topic{}, false)
	f("sensors/temp", Topic{}, false)
}

func TestFlatten(t *testing.T) {
	f := func(doc, section string, strs bool, want string, trunc bool) {
		t.Helper()
		d, err := Flatten([]byte(doc), section, strs)
		if err != nil {
			t.Fatalf("Flatten(%s): %v", doc, err)
		}
		var got []string
		for _, p := range d.Params {
			got = append(got, fmt.Sprintf("%s:%s=%g", p.Section, p.Path, p.Value))
		}
		if g := strings.Join(got, " "); g != want || d.Truncated != trunc {
			t.Errorf("Flatten(%s)\n got %s truncated %v\nwant %s truncated %v", doc, g, d.Truncated, want, trunc)
		}
	}
	// AWS shadow documents.
	f(`{"state":{"desired":{"heater":{"setpoint":21.5,"on":true},"mode":"eco"},"reported":{"heater":{"setpoint":21,"temp":19.75}}},"clientToken":"x","version":7}`, "", false,
		"desired:heater.setpoint=21.5 reported:heater.setpoint=21 reported:heater.temp=19.75", false)
	f(`{"state":{"reported":{"fw":{"build":1042},"rssi":-61,"list":[1,2],"n":null}}}`, "", false,
		"reported:fw.build=1042 reported:rssi=-61", false)
	f(`{"desired":{"a":1}}`, "", false, "desired:a=1", false) // no "state"
	f(`{"state":{"desired":null,"reported":{"a":1}}}`, "", false, "reported:a=1", false)
	// Azure PATCH: the section's properties, $version skipped.
	f(`{"telemetryInterval":30,"$version":12,"limits":{"max":80}}`, Desired, false, "desired:telemetryInterval=30 desired:limits.max=80", false)
	// ThingsBoard audit values are strings.
	f(`{"setpoint":"85.5","label":"boiler","flag":"true"}`, Desired, true, "desired:setpoint=85.5", false)
	f(`{"setpoint":"85.5"}`, Desired, false, "", false)
	// Truncated captures keep what came before the cut.
	f(`{"state":{"desired":{"a":1,"b":2,"c":`, "", false, "desired:a=1 desired:b=2", true)
	// Depth bound.
	deep := `{"state":{"reported":{"d":` + strings.Repeat(`{"x":`, 10) + `1` + strings.Repeat(`}`, 10) + `,"y":2}}}`
	f(deep, "", false, "reported:y=2", true)
	// Count bound.
	var b strings.Builder
	b.WriteString(`{"state":{"reported":{`)
	for i := range MaxParams + 5 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"p%d":%d`, i, i)
	}
	b.WriteString(`}}}`)
	d, err := Flatten([]byte(b.String()), "", false)
	if err != nil || len(d.Params) != MaxParams || !d.Truncated {
		t.Errorf("count bound: %d params, truncated %v, %v", len(d.Params), d.Truncated, err)
	}
	for _, bad := range []string{``, `[1,2]`, `"x"`, `nope`} {
		if _, err := Flatten([]byte(bad), "", false); err != ErrNotJSON {
			t.Errorf("Flatten(%q): %v, want ErrNotJSON", bad, err)
		}
	}
}

// FuzzFlatten: any input, bounded output, no panic.
func FuzzFlatten(f *testing.F) {
	for _, s := range []string{
		`{"state":{"desired":{"heater":{"setpoint":21.5}},"reported":{"heater":{"setpoint":21}}}}`,
		`{"telemetryInterval":30,"$version":12}`,
		`{"setpoint":"85.5"}`,
		`{"state":{"desired":{"a":[{"b":1}],"c":{"d":{"e":1e308}}}}}`,
		`{"state":{"reported":{"a":1,`,
		`{"\u0000":1,"\xff":2}`,
	} {
		f.Add([]byte(s), "", false)
		f.Add([]byte(s), Desired, true)
	}
	f.Fuzz(func(t *testing.T, doc []byte, section string, strs bool) {
		d, err := Flatten(doc, section, strs)
		if err != nil {
			return
		}
		if len(d.Params) > MaxParams {
			t.Fatalf("%d params", len(d.Params))
		}
		for _, p := range d.Params {
			if len(p.Path) > MaxPath+MaxDepth || p.Path == "" {
				t.Fatalf("path %q", p.Path)
			}
			if p.Section != Desired && p.Section != Reported && p.Section != section {
				t.Fatalf("section %q", p.Section)
			}
		}
	})
}

func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{"$aws/things/a/shadow/update", "$aws/things/a/shadow/name/b/update", "$iothub/twin/PATCH/properties/desired/?$version=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tp, ok := ParseTopic(s)
		if ok && tp.Platform == "" {
			t.Fatal("no platform")
		}
	})
}
