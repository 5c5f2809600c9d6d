// Package eval measures the learned baseline (detect/baseline) on a
// labelled set recorded with real clients, servers and attack tools in
// network namespaces: build.sh records it, TestLabelledSet runs
// `vigil sensor` and `vigil detect --learn` over it and reports precision
// and recall per attack class and medium+ alerts per device-day on the
// normal traffic. build_normal.sh records normal traffic only, with device
// rhythms and a daily burst, which detect/baseline's TestNormalDays replays
// over days. docs/anomaly.md has the method, the figures and the commands.
package eval
