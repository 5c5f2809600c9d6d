package investigate

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// Reasons an entity is in a blast radius, strongest first, with their
// weights: an entity's score is the sum of its reasons' weights.
const (
	// ReasonReached: a compromised device talked to it (or to its
	// address) after the first malicious event.
	ReasonReached = "reached"
	// ReasonSameSource: the address the attack came from reached it too.
	ReasonSameSource = "same_source"
	// ReasonSameAccount: it logged in with an account the attack used or
	// that a compromised device logged in with.
	ReasonSameAccount = "same_account"
	// ReasonMQTTTopic: it subscribes to a topic a compromised device
	// publishes to.
	ReasonMQTTTopic = "mqtt_topic"
	// ReasonVulnerable: it has a vulnerability a compromised device has.
	ReasonVulnerable = "same_vulnerability"
	// ReasonGateway: it is the gateway of a compromised device's subnet,
	// or shares its gateway.
	ReasonGateway = "same_gateway"
	// ReasonSameSoftware: it runs the same firmware, or the same versions
	// of software, as a compromised device (what was exploited there may
	// work here; no vulnerability needs to be known).
	ReasonSameSoftware = "same_software"
	// ReasonSubnet: it is in a compromised device's subnet.
	ReasonSubnet = "same_subnet"
)

var weights = map[string]float64{
	ReasonReached: 10, ReasonSameSource: 8, ReasonSameAccount: 7, ReasonMQTTTopic: 7,
	ReasonVulnerable: 5, ReasonGateway: 3, ReasonSameSoftware: 2, ReasonSubnet: 1,
}

// BlastRadius is what an incident's compromised devices reached or share
// a weakness with, ranked.
type BlastRadius struct {
	IncidentID string `json:"incident_id"`
	// Compromised are the incident's devices.
	Compromised []string `json:"compromised"`
	// Since is the incident's first malicious event: "reached" counts
	// from it.
	Since time.Time `json:"since"`
	// Computed is when this answer was computed: it follows the events
	// stored until then.
	Computed time.Time `json:"computed"`
	// Items are ranked by score, highest first.
	Items []Impact `json:"items"`
	// Total is how many entities were found (Items holds at most
	// MaxImpacts).
	Total int `json:"total"`
}

// MaxImpacts bounds BlastRadius.Items.
const MaxImpacts = 200

// Impact is one entity in a blast radius and why.
type Impact struct {
	Entity string `json:"entity"` // entity key
	// Device is the device id when the entity is, or has the address of,
	// an inventoried device.
	Device  string   `json:"device,omitempty"`
	Score   float64  `json:"score"`
	Reasons []Reason `json:"reasons"`
}

// Reason is one reason an entity is in a blast radius, with evidence.
type Reason struct {
	Code   string  `json:"code"`
	Weight float64 `json:"weight"`
	// Detail says it in a sentence.
	Detail string `json:"detail"`
	// Relations are the graph relations that show it (each cites its
	// first and last events).
	Relations []store.Relation `json:"relations,omitempty"`
	// Vulns are the shared vulnerabilities (CVE or advisory ids).
	Vulns []string `json:"vulns,omitempty"`
}

// radius collects impacts by entity key.
type radius struct {
	byKey       map[string]*Impact
	compromised map[string]bool // entity keys of the compromised devices and their addresses
}

func (r *radius) add(key, device, code, detail string, rels ...store.Relation) {
	if r.compromised[key] || device != "" && r.compromised[devKey(device)] {
		return
	}
	im := r.byKey[key]
	if im == nil {
		im = &Impact{Entity: key, Device: device}
		r.byKey[key] = im
	}
	if im.Device == "" {
		im.Device = device
	}
	for i := range im.Reasons {
		// One reason of a code per entity: more evidence joins it.
		if im.Reasons[i].Code == code {
			if len(im.Reasons[i].Relations) < 10 {
				im.Reasons[i].Relations = append(im.Reasons[i].Relations, rels...)
			}
			return
		}
	}
	im.Reasons = append(im.Reasons, Reason{Code: code, Weight: weights[code], Detail: detail, Relations: rels})
	im.Score += weights[code]
}

func devKey(id string) string { return store.EntityKey(store.EntityDevice, id) }

func value(key string) string {
	_, v, _ := store.SplitEntityKey(key)
	return v
}

func typeOf(key string) string {
	t, _, _ := store.SplitEntityKey(key)
	return t
}

// relations returns the relations of keys (chunked), filtered.
func (iv *Investigator) relations(ctx context.Context, keys []string, rels []string, since time.Time) ([]store.Relation, error) {
	var out []store.Relation
	for chunk := range slices.Chunk(keys, store.MaxGraphKeys) {
		rs, err := iv.st.GraphRelations(ctx, store.GraphFilter{Keys: chunk, Rels: rels, Since: since, Limit: store.MaxGraphRelations})
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

// BlastRadius computes the blast radius of an incident from the graph,
// the inventory and the vulnerability findings as stored now.
// ENOTFOUND when the incident does not exist.
func (iv *Investigator) BlastRadius(ctx context.Context, incidentID string) (BlastRadius, error) {
	inc, err := iv.st.GetIncident(ctx, incidentID)
	if err != nil {
		return BlastRadius{}, err
	}
	return iv.blastRadius(ctx, inc)
}

func (iv *Investigator) blastRadius(ctx context.Context, inc vigil.Incident) (BlastRadius, error) {
	since := inc.FirstEventTime
	if since.IsZero() {
		since = inc.Detected
	}
	br := BlastRadius{IncidentID: inc.ID, Compromised: slices.Clone(inc.DeviceIDs), Since: since, Computed: iv.clock.Now().UTC()}
	r := &radius{byKey: map[string]*Impact{}, compromised: map[string]bool{}}
	var comp []string
	for _, d := range inc.DeviceIDs {
		comp = append(comp, devKey(d))
		r.compromised[devKey(d)] = true
	}
	if len(comp) == 0 {
		return br, nil
	}
	own, err := iv.relations(ctx, comp, nil, time.Time{})
	if err != nil {
		return BlastRadius{}, err
	}
	// The compromised devices' own addresses, the attack's sources, the
	// accounts involved and the topics published to.
	var ownIPs, sources, accounts, topics, gateways []string
	add := func(list *[]string, k string) {
		if !slices.Contains(*list, k) {
			*list = append(*list, k)
		}
	}
	for _, e := range inc.Entities {
		switch typeOf(e) {
		case store.EntityIP:
			add(&sources, e)
		case store.EntityUser:
			add(&accounts, e)
		}
	}
	for _, rel := range own {
		switch {
		case rel.Rel == "has_ip" && r.compromised[rel.From]:
			add(&ownIPs, rel.To)
			r.compromised[rel.To] = true
		case rel.Rel == "logged_in_to" && r.compromised[rel.To] && !rel.LastSeen.Before(since):
			add(&sources, rel.From)
		case (rel.Rel == "logged_in_as") && r.compromised[rel.From] && !rel.LastSeen.Before(since):
			add(&accounts, rel.To)
		case rel.Rel == "published_to" && r.compromised[rel.From]:
			add(&topics, rel.To)
		case rel.Rel == "via_gateway" && r.compromised[rel.From]:
			add(&gateways, rel.To)
		}
	}
	// An incident's entities may name the compromised device's own
	// address (the sender of what it published): not a source.
	sources = slices.DeleteFunc(sources, func(s string) bool { return slices.Contains(ownIPs, s) })
	for _, s := range sources {
		r.compromised[s] = true // the attacker is not in its own blast radius
	}

	// Reached after the first malicious event: from the devices and from
	// their addresses.
	var reachedIPs []string
	ipRels, err := iv.relations(ctx, ownIPs, []string{"talked_to"}, since)
	if err != nil {
		return BlastRadius{}, err
	}
	for _, rel := range append(slices.Clone(own), ipRels...) {
		if !r.compromised[rel.From] || rel.LastSeen.Before(since) {
			continue
		}
		switch rel.Rel {
		case "talked_to", "downloaded_from", "resolved", "tls_to", "requested", "connected_to", "published_to":
		default:
			continue
		}
		if typeOf(rel.To) == store.EntityIP {
			add(&reachedIPs, rel.To)
		}
		r.add(rel.To, "", ReasonReached, fmt.Sprintf("%s %s %s %s since the first malicious event (last %s)",
			value(rel.From), strings.ReplaceAll(rel.Rel, "_", " "), value(rel.To), times(rel.Count), rel.LastSeen.Format(time.RFC3339)), rel)
	}

	// The attack's sources: what else they reached.
	srcRels, err := iv.relations(ctx, sources, []string{"logged_in_to", "talked_to"}, time.Time{})
	if err != nil {
		return BlastRadius{}, err
	}
	for _, rel := range srcRels {
		if !slices.Contains(sources, rel.From) || r.compromised[rel.To] {
			continue
		}
		if typeOf(rel.To) == store.EntityIP {
			add(&reachedIPs, rel.To)
		}
		r.add(rel.To, "", ReasonSameSource, fmt.Sprintf("the attack's source %s %s it too, %s (last %s)",
			value(rel.From), strings.ReplaceAll(rel.Rel, "_", " "), times(rel.Count), rel.LastSeen.Format(time.RFC3339)), rel)
	}

	// Accounts: who else logs in with them.
	accRels, err := iv.relations(ctx, accounts, []string{"logged_in_as", "failed_login_as"}, time.Time{})
	if err != nil {
		return BlastRadius{}, err
	}
	for _, rel := range accRels {
		if r.compromised[rel.From] || !slices.Contains(accounts, rel.To) {
			continue
		}
		how := "logs in as"
		if rel.Rel == "failed_login_as" {
			how = "saw failed logins as"
		}
		dev := ""
		if typeOf(rel.From) == store.EntityDevice {
			dev = value(rel.From)
		}
		r.add(rel.From, dev, ReasonSameAccount, fmt.Sprintf("%s %s %s, an account of the attack (%s, last %s)",
			value(rel.From), how, value(rel.To), times(rel.Count), rel.LastSeen.Format(time.RFC3339)), rel)
	}

	// MQTT: subscribers of the topics the compromised devices publish to.
	if err := iv.mqttImpact(ctx, r, topics); err != nil {
		return BlastRadius{}, err
	}

	// Addresses reached belong to devices: name them.
	if err := iv.nameDevices(ctx, r, reachedIPs); err != nil {
		return BlastRadius{}, err
	}

	// Gateways shared, subnets and vulnerabilities: from the inventory.
	if err := iv.inventoryImpact(ctx, r, inc.DeviceIDs, gateways); err != nil {
		return BlastRadius{}, err
	}

	for _, im := range r.byKey {
		br.Items = append(br.Items, *im)
	}
	slices.SortFunc(br.Items, func(a, b Impact) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(a.Entity, b.Entity))
	})
	br.Total = len(br.Items)
	if len(br.Items) > MaxImpacts {
		br.Items = br.Items[:MaxImpacts]
	}
	if br.Items == nil {
		br.Items = []Impact{}
	}
	return br, nil
}

// mqttImpact adds the devices that subscribe to a filter matching a topic
// the compromised devices publish to.
func (iv *Investigator) mqttImpact(ctx context.Context, r *radius, topics []string) error {
	for _, t := range topics {
		filters := topicFilters(value(t))
		keys := make([]string, len(filters))
		for i, f := range filters {
			keys[i] = store.EntityKey(store.EntityTopic, f)
		}
		rels, err := iv.relations(ctx, keys, []string{"subscribed_to"}, time.Time{})
		if err != nil {
			return err
		}
		for _, rel := range rels {
			if r.compromised[rel.From] {
				continue
			}
			dev := ""
			if typeOf(rel.From) == store.EntityDevice {
				dev = value(rel.From)
			}
			r.add(rel.From, dev, ReasonMQTTTopic, fmt.Sprintf("%s subscribes to %s, which receives what the compromised device publishes to %s",
				value(rel.From), value(rel.To), value(t)), rel)
		}
	}
	return nil
}

// maxTopicLevels bounds the levels of a topic whose matching filters are
// enumerated (2^(n+1) filters).
const maxTopicLevels = 8

// topicFilters returns every MQTT filter that matches topic: the topic,
// "#", and each combination of levels replaced by "+" with or without a
// trailing "#" (MQTT 3.1.1 section 4.7). Topics starting with "$" match
// no filter starting with a wildcard.
func topicFilters(topic string) []string {
	levels := strings.Split(topic, "/")
	if len(levels) > maxTopicLevels {
		return []string{topic}
	}
	sys := strings.HasPrefix(topic, "$")
	var out []string
	var walk func(i int, prefix []string)
	walk = func(i int, prefix []string) {
		if !(sys && i == 0) {
			out = append(out, strings.Join(append(slices.Clone(prefix), "#"), "/"))
		}
		if i == len(levels) {
			out = append(out, strings.Join(prefix, "/"))
			return
		}
		walk(i+1, append(slices.Clone(prefix), levels[i]))
		if !(sys && i == 0) {
			walk(i+1, append(slices.Clone(prefix), "+"))
		}
	}
	walk(0, nil)
	slices.Sort(out)
	return slices.Compact(out)
}

// nameDevices sets the device of impacts on addresses that inventoried
// devices have, and gives the device itself the address's reasons.
func (iv *Investigator) nameDevices(ctx context.Context, r *radius, ips []string) error {
	rels, err := iv.relations(ctx, ips, []string{"has_ip"}, time.Time{})
	if err != nil {
		return err
	}
	for _, rel := range rels {
		im := r.byKey[rel.To]
		if im == nil || typeOf(rel.From) != store.EntityDevice {
			continue
		}
		dev := value(rel.From)
		im.Device = dev
		for _, rs := range im.Reasons {
			r.add(rel.From, dev, rs.Code, rs.Detail+fmt.Sprintf(" (%s is an address of %s)", value(rel.To), dev), rs.Relations...)
		}
		delete(r.byKey, rel.To) // the device stands for its address
	}
	return nil
}

// InventoryTTL is how long the inventory read for blast radii is kept:
// reading 10,000 devices costs about 200 ms, which a console page or an
// alert storm must not pay on each request; a device's new software or
// address counts after at most this long.
const InventoryTTL = 15 * time.Second

// inventory returns the devices (at most maxInventory), read again when
// the copy is older than InventoryTTL. The slice is shared: read only.
func (iv *Investigator) inventory(ctx context.Context) ([]vigil.Device, error) {
	iv.invMu.Lock()
	defer iv.invMu.Unlock()
	now := iv.clock.Now()
	if iv.inv != nil && now.Sub(iv.invAt) < InventoryTTL && now.Sub(iv.invAt) >= 0 {
		return iv.inv, nil
	}
	var all []vigil.Device
	for cursor := ""; len(all) < maxInventory; {
		ds, next, err := iv.st.ListDevices(ctx, store.DeviceFilter{Page: store.Page{Limit: 1000, Cursor: cursor}})
		if err != nil {
			return nil, err
		}
		all = append(all, ds...)
		if next == "" {
			break
		}
		cursor = next
	}
	if all == nil {
		all = []vigil.Device{}
	}
	iv.inv, iv.invAt = all, now
	return all, nil
}

// maxInventory bounds how many devices the inventory reasons read.
const maxInventory = 20000

// inventoryImpact adds devices sharing a subnet, a gateway or a
// vulnerability with the compromised ones.
func (iv *Investigator) inventoryImpact(ctx context.Context, r *radius, compromised, gateways []string) error {
	all, err := iv.inventory(ctx)
	if err != nil {
		return err
	}
	var subnets []netip.Prefix
	gw := map[string]bool{}
	for _, g := range gateways {
		gw[value(g)] = true
	}
	vulns := map[string]string{}  // vuln id → component of a compromised device
	software := map[string]bool{} // name version of the compromised devices' components
	firmware := map[string]bool{} // vendor model firmware of the compromised devices
	for _, d := range all {
		if !slices.Contains(compromised, d.ID) {
			continue
		}
		if d.Firmware != "" {
			firmware[d.Vendor+" "+d.Model+" "+d.Firmware] = true
		}
		for _, c := range d.Software {
			if c.Version != "" {
				software[c.Name+" "+c.Version] = true
			}
		}
		for _, p := range prefixes(d) {
			subnets = append(subnets, p.Masked())
		}
		if iv.findings != nil {
			for _, f := range iv.findings(d.ID) {
				if f.Suppressed == "" {
					vulns[f.Vuln] = strings.TrimSpace(f.Component + " " + f.ComponentVersion)
				}
			}
		}
	}
	for _, d := range all {
		if slices.Contains(compromised, d.ID) {
			continue
		}
		key := devKey(d.ID)
		for _, p := range prefixes(d) {
			for _, s := range subnets {
				if s != p.Masked() {
					continue
				}
				if gw[p.Addr().String()] {
					r.add(key, d.ID, ReasonGateway, fmt.Sprintf("%s (%s) is the gateway of a compromised device", d.ID, p.Addr()))
				} else if d.Class == vigil.ClassGateway {
					r.add(key, d.ID, ReasonGateway, fmt.Sprintf("%s is a %s in the compromised device's subnet %s", d.ID, d.Class, s))
				}
				r.add(key, d.ID, ReasonSubnet, fmt.Sprintf("%s (%s) is in the compromised device's subnet %s", d.ID, p.Addr(), s))
			}
		}
		var same []string
		if d.Firmware != "" && firmware[d.Vendor+" "+d.Model+" "+d.Firmware] {
			same = append(same, "firmware "+strings.TrimSpace(d.Vendor+" "+d.Model)+" "+d.Firmware)
		}
		for _, c := range d.Software {
			if software[c.Name+" "+c.Version] && !slices.Contains(same, c.Name+" "+c.Version) {
				same = append(same, c.Name+" "+c.Version)
			}
		}
		if len(same) > 0 {
			r.add(key, d.ID, ReasonSameSoftware, fmt.Sprintf("%s runs what a compromised device runs: %s", d.ID, strings.Join(same, ", ")))
		}
		if iv.findings == nil || len(vulns) == 0 {
			continue
		}
		var shared []string
		var what []string
		for _, f := range iv.findings(d.ID) {
			if c, ok := vulns[f.Vuln]; ok && f.Suppressed == "" && !slices.Contains(shared, f.Vuln) {
				shared = append(shared, f.Vuln)
				w := f.Vuln + " in " + c
				if f.KEV {
					w += " (known exploited)"
				}
				if f.Exposed {
					w += " (exposed: " + f.Exposure + ")"
				}
				what = append(what, w)
			}
		}
		if len(shared) > 0 {
			slices.Sort(shared)
			slices.Sort(what)
			r.add(key, d.ID, ReasonVulnerable, fmt.Sprintf("%s has %s a compromised device has: %s", d.ID, plural(len(shared), "vulnerability", "vulnerabilities"), strings.Join(what, "; ")))
			im := r.byKey[key]
			for i := range im.Reasons {
				if im.Reasons[i].Code == ReasonVulnerable {
					im.Reasons[i].Vulns = shared
				}
			}
		}
	}
	return nil
}

// prefixes returns the device's interface addresses with their prefix
// lengths (those without one are left out: their subnet is unknown).
func prefixes(d vigil.Device) []netip.Prefix {
	var out []netip.Prefix
	for _, n := range d.Network {
		for _, a := range n.Addresses {
			p, err := netip.ParsePrefix(a)
			if err != nil || p.Addr().IsLoopback() || p.Addr().IsLinkLocalUnicast() || p.Bits() == p.Addr().BitLen() {
				continue
			}
			out = append(out, netip.PrefixFrom(p.Addr().Unmap(), p.Bits()))
		}
	}
	return out
}

// times says n times in words.
func times(n int64) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
