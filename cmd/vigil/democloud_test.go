package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDemoFromCloud: vigil demo --from-cloud starts the story in the AWS
// console (CloudTrail pushed to the server) and ends on the camera; the
// console login from a new place, the camera's thing change and the bot
// on the camera are one incident, contained.
func TestDemoFromCloud(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 12 s demo; skipped with -short")
	}
	var out strings.Builder
	ok, err := runDemo(t.Context(), demoOptions{devices: 5, duration: 12 * time.Second, interval: time.Second, attackAt: 3 * time.Second, seed: 1, cloud: true}, &out)
	if err != nil || !ok {
		t.Fatalf("demo: detected=%v err=%v\n%s", ok, err, out.String())
	}
	s := out.String()
	target := regexp.MustCompile(`attack on (\S+) `).FindStringSubmatch(s)
	if target == nil || !strings.Contains(s, "cloud    AWS console: console login of fleet-admin from 203.0.113.66") {
		t.Fatalf("no cloud story:\n%s", s)
	}
	inc := regexp.MustCompile(`(?m)^Incident \S+: New place: AWS console login of fleet-admin.*\n  status (\w+), severity \w+, devices \[([^\]]*)\], (\d+) alerts`).FindStringSubmatch(s)
	if inc == nil || inc[2] != target[1] || atoi(inc[3]) < 3 {
		t.Fatalf("the cloud login's incident does not hold the camera %s: %q\n%s", target[1], inc, s)
	}
	if n := strings.Count(s, "devices ["+target[1]+"]"); n != 1 {
		t.Errorf("%d incidents on the camera, want 1\n%s", n, s)
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
