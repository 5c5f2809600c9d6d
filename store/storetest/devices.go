package storetest

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

func fullHealth(deviceID string, at time.Time) vigil.Health {
	return vigil.Health{
		DeviceID:    deviceID,
		Time:        at,
		CPU:         93.5,
		Memory:      41.25,
		Disk:        77,
		Temperature: 61.5,
		Uptime:      86400 * 3,
		Metrics:     map[string]float64{"fps": 24.97, "dropped_frames": 3, "negative": -1.5},
	}
}

func fullDevice(id string) vigil.Device {
	h := fullHealth(id, base.Add(-time.Minute).In(elsewhere))
	return vigil.Device{
		ID:       id,
		Name:     "Front door camera",
		Class:    vigil.ClassCamera,
		Vendor:   "Hikvision",
		Model:    "DS-2CD2143G2-I",
		Firmware: "5.7.3 build 220112",
		OS:       "linux",
		Kernel:   "4.9.37",
		Software: []vigil.Component{
			{Name: "busybox", Version: "1.31.1", Type: "package", Source: "opkg", PURL: "pkg:generic/busybox@1.31.1", CPE: "cpe:2.3:a:busybox:busybox:1.31.1:*:*:*:*:*:*:*"},
			{Name: "openssl", Version: "1.1.1k", Type: "library", Source: "sbom", PURL: "pkg:generic/openssl@1.1.1k"},
		},
		Network: []vigil.NetIdentity{
			{Interface: "eth0", MAC: "44:19:b6:01:02:03", Addresses: []string{"10.0.0.7", "fe80::4619:b6ff:fe01:203"}},
			{Interface: "wlan0", MAC: "44:19:b6:01:02:04"},
		},
		Tags:      []string{"site:hq", "floor:1"},
		State:     vigil.StateActive,
		FirstSeen: base.Add(-24 * time.Hour),
		LastSeen:  base.In(elsewhere),
		Health:    &h,
	}
}

func normHealth(h vigil.Health) vigil.Health {
	h.Time = h.Time.UTC()
	return h
}

func normDevice(d vigil.Device) vigil.Device {
	d.FirstSeen = d.FirstSeen.UTC()
	d.LastSeen = d.LastSeen.UTC()
	if d.Health != nil {
		h := normHealth(*d.Health)
		d.Health = &h
	}
	return d
}

func testDeviceRoundTrip(t *testing.T, s store.Store) {
	_, err := s.GetDevice(ctx(t), "cam-1")
	wantCode(t, err, vigil.ENOTFOUND, "GetDevice of a missing device")

	d := fullDevice("cam-1")
	must(t, s.PutDevice(ctx(t), d), "PutDevice")
	got, err := s.GetDevice(ctx(t), "cam-1")
	must(t, err, "GetDevice")
	deepEqual(t, "device", normDevice(got), normDevice(d))

	// PutDevice replaces the whole record.
	d.State = vigil.StateQuarantined
	d.Tags = []string{"quarantined"}
	d.Software = d.Software[:1]
	d.Health = nil
	d.LastSeen = base.Add(time.Hour)
	must(t, s.PutDevice(ctx(t), d), "PutDevice (replace)")
	got, err = s.GetDevice(ctx(t), "cam-1")
	must(t, err, "GetDevice")
	deepEqual(t, "replaced device", normDevice(got), normDevice(d))
	list, _, err := s.ListDevices(ctx(t), store.DeviceFilter{})
	must(t, err, "ListDevices")
	if len(list) != 1 {
		t.Fatalf("ListDevices after replace: %d devices, want 1", len(list))
	}

	minimal := vigil.Device{ID: "m-1", State: vigil.StateDiscovered, FirstSeen: base, LastSeen: base}
	must(t, s.PutDevice(ctx(t), minimal), "PutDevice minimal")
	got, err = s.GetDevice(ctx(t), "m-1")
	must(t, err, "GetDevice minimal")
	deepEqual(t, "minimal device", normDevice(got), normDevice(minimal))

	wantCode(t, s.PutDevice(ctx(t), vigil.Device{Name: "no id"}), vigil.EINVALID, "PutDevice without id")
}

func testDeviceList(t *testing.T, s store.Store) {
	classes := []string{vigil.ClassCamera, vigil.ClassThermostat, vigil.ClassPLCGateway, vigil.ClassSmartMeter}
	states := []vigil.DeviceState{vigil.StateActive, vigil.StateOffline, vigil.StateQuarantined}
	var all []vigil.Device
	for i := range 37 {
		d := fullDevice(name("dev", 36-i)) // put in reverse id order
		d.Class = classes[i%4]
		d.State = states[i%3]
		d.Tags = []string{fmt.Sprintf("site:hq%d", i%2), "floor:" + fmt.Sprint(i%5)}
		if i%6 == 0 {
			d.Tags = append(d.Tags, "site:hq") // a prefix of the others: must not match them
		}
		must(t, s.PutDevice(ctx(t), d), "PutDevice")
		all = append(all, d)
	}
	slices.SortFunc(all, func(a, b vigil.Device) int { return cmp.Compare(a.ID, b.ID) })
	cases := []store.DeviceFilter{
		{},
		{Class: vigil.ClassThermostat},
		{Class: "toaster"},
		{State: vigil.StateQuarantined},
		{Tag: "site:hq"},
		{Tag: "floor:3"},
		{Tag: "floor"},
		{Class: vigil.ClassCamera, State: vigil.StateActive},
		{Class: vigil.ClassPLCGateway, State: vigil.StateOffline, Tag: "site:hq1"},
	}
	for _, f := range cases {
		want := filterSlice(all, func(d vigil.Device) bool {
			return (f.Class == "" || d.Class == f.Class) &&
				(f.State == "" || d.State == f.State) &&
				(f.Tag == "" || slices.Contains(d.Tags, f.Tag))
		})
		for _, limit := range []int{0, 1, 4} {
			got := walk(t, limit, func(p store.Page) ([]vigil.Device, string, error) {
				g := f
				g.Page = p
				return s.ListDevices(ctx(t), g)
			})
			sameIDs(t, fmt.Sprintf("ListDevices(%+v) limit %d", f, limit), ids(got, deviceID), ids(want, deviceID))
			if limit == 0 && len(got) > 0 {
				for i := range got {
					got[i] = normDevice(got[i])
					want[i] = normDevice(want[i])
				}
				deepEqual(t, "listed devices", got, want)
			}
		}
	}
	_, _, err := s.ListDevices(ctx(t), store.DeviceFilter{Page: store.Page{Cursor: "%%%"}})
	wantCode(t, err, vigil.EINVALID, "ListDevices with a bad cursor")
	_, _, err = s.ListDevices(ctx(t), store.DeviceFilter{Page: store.Page{Limit: -5}})
	wantCode(t, err, vigil.EINVALID, "ListDevices with a negative limit")
}

func testHealth(t *testing.T, s store.Store) {
	var samples []vigil.Health
	for i := range 10 {
		at := base.Add(time.Duration(i) * time.Minute)
		samples = append(samples, fullHealth("cam-1", at.In(elsewhere)), fullHealth("cam-2", at))
		samples[len(samples)-2].CPU = float64(i)
	}
	// Two calls, the second out of time order.
	must(t, s.AddHealth(ctx(t), samples[:10]), "AddHealth")
	later := slices.Clone(samples[10:])
	slices.Reverse(later)
	must(t, s.AddHealth(ctx(t), later), "AddHealth")

	got, err := s.HealthHistory(ctx(t), "cam-1", base.Add(2*time.Minute), base.Add(5*time.Minute))
	must(t, err, "HealthHistory")
	var want []vigil.Health
	for i := 2; i < 5; i++ {
		want = append(want, normHealth(samples[2*i]))
	}
	for i := range got {
		got[i] = normHealth(got[i])
	}
	deepEqual(t, "health history [2m, 5m)", got, want)

	got, err = s.HealthHistory(ctx(t), "cam-2", base, base.Add(time.Hour))
	must(t, err, "HealthHistory")
	if len(got) != 10 {
		t.Fatalf("HealthHistory of cam-2: %d samples, want 10", len(got))
	}
	for i := range got {
		if want := base.Add(time.Duration(i) * time.Minute); !got[i].Time.Equal(want) || got[i].DeviceID != "cam-2" {
			t.Fatalf("sample %d of cam-2: %s at %s, want cam-2 at %s (oldest first)", i, got[i].DeviceID, got[i].Time, want)
		}
	}

	got, err = s.HealthHistory(ctx(t), "cam-9", base, base.Add(time.Hour))
	must(t, err, "HealthHistory of a device without samples")
	if len(got) != 0 {
		t.Fatalf("HealthHistory of a device without samples: %d samples", len(got))
	}
	got, err = s.HealthHistory(ctx(t), "cam-1", base.Add(time.Hour), base.Add(2*time.Hour))
	must(t, err, "HealthHistory of an empty range")
	if len(got) != 0 {
		t.Fatalf("HealthHistory of an empty range: %d samples", len(got))
	}

	err = s.AddHealth(ctx(t), []vigil.Health{{Time: base, CPU: 1}})
	wantCode(t, err, vigil.EINVALID, "AddHealth of a sample without device id")
}

// testDeviceMergeReports: a report creates its device; a later report
// updates what reports own and keeps what operators own (Tags, Enrolled, a
// quarantined state), even though the report carries none of it; reports
// racing to create one device all land.
func testDeviceMergeReports(t *testing.T, s store.Store) {
	first := vigil.Device{ID: "gw-1", Class: vigil.ClassGateway, Firmware: "1.0", State: vigil.StateActive,
		FirstSeen: base, LastSeen: base, Software: []vigil.Component{{Name: "busybox", Version: "1.36.1"}}}
	got, err := s.MergeDeviceReports(ctx(t), []vigil.Device{first})
	must(t, err, "MergeDeviceReports (create)")
	deepEqual(t, "created device", normDevice(got[0]), normDevice(first))
	stored, err := s.GetDevice(ctx(t), "gw-1")
	must(t, err, "GetDevice")
	deepEqual(t, "stored created device", normDevice(stored), normDevice(first))

	// An operator tags the device and quarantines it; enrollment stamps it.
	enrolled := base.Add(time.Minute)
	stored.Tags = []string{"safety-critical", "site:plant-2"}
	stored.State = vigil.StateQuarantined
	stored.Enrolled = enrolled
	stored.Name = "Boiler gateway"
	must(t, s.PutDevice(ctx(t), stored), "PutDevice (operator)")

	// The next report knows none of it: it carries what the stage had
	// cached since the first report.
	h := fullHealth("gw-1", base.Add(time.Hour))
	next := first
	next.Firmware = "1.1"
	next.Software = nil // not in this report: kept
	next.LastSeen = base.Add(time.Hour)
	next.FirstSeen = base.Add(-time.Hour)
	next.Health = &h
	other := vigil.Device{ID: "cam-9", State: vigil.StateDiscovered, FirstSeen: base, LastSeen: base}
	got, err = s.MergeDeviceReports(ctx(t), []vigil.Device{next, other})
	must(t, err, "MergeDeviceReports (update)")
	want := stored
	want.Firmware = "1.1"
	want.LastSeen = next.LastSeen
	want.FirstSeen = next.FirstSeen
	want.Health = &h
	if len(got) != 2 || got[1].ID != "cam-9" {
		t.Fatalf("MergeDeviceReports returned %d devices (%+v), want gw-1 and cam-9 in order", len(got), got)
	}
	deepEqual(t, "merged device (returned)", normDevice(got[0]), normDevice(want))
	stored, err = s.GetDevice(ctx(t), "gw-1")
	must(t, err, "GetDevice")
	deepEqual(t, "merged device (stored)", normDevice(stored), normDevice(want))

	// An older report moves nothing back.
	old := first
	old.Firmware = ""
	got, err = s.MergeDeviceReports(ctx(t), []vigil.Device{old})
	must(t, err, "MergeDeviceReports (older)")
	deepEqual(t, "device after an older report", normDevice(got[0]), normDevice(want))

	// A report without an id fails the call before anything is written.
	_, err = s.MergeDeviceReports(ctx(t), []vigil.Device{{ID: "new-1", LastSeen: base}, {Name: "no id"}})
	wantCode(t, err, vigil.EINVALID, "MergeDeviceReports without id")
	_, err = s.GetDevice(ctx(t), "new-1")
	wantCode(t, err, vigil.ENOTFOUND, "device of a refused call")

	// Reports racing to create one device: all succeed, the latest
	// LastSeen wins.
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := s.MergeDeviceReports(ctx(t), []vigil.Device{
				{ID: "race-1", State: vigil.StateActive, FirstSeen: base, LastSeen: base.Add(time.Duration(i) * time.Second)},
				{ID: "race-0", State: vigil.StateActive, FirstSeen: base, LastSeen: base.Add(time.Duration(i) * time.Second)},
			})
			errs <- err
		}()
	}
	for range n {
		must(t, <-errs, "concurrent MergeDeviceReports")
	}
	for _, id := range []string{"race-0", "race-1"} {
		d, err := s.GetDevice(ctx(t), id)
		must(t, err, "GetDevice "+id)
		if want := base.Add((n - 1) * time.Second); !d.LastSeen.Equal(want) {
			t.Errorf("%s: last seen %v after concurrent reports, want %v", id, d.LastSeen, want)
		}
	}
}
