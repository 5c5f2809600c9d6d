// Package remediate turns vulnerability findings into update plans and
// runs them: for findings whose fixed version has an update artifact, it
// proposes one plan per cohort (device class and model) and artifact, in
// waves (a canary share first, then the rest), sends the update commands
// of a wave through the command channel, checks each device afterwards
// (its result, then that it reports the new version, normal health — also
// against its own learned baseline — and raises no alert of medium
// severity or above while it is watched),
// halts the plan and rolls back the failed devices when a wave fails, and
// closes each finding when its device reports the fixed version.
//
// It owns the plan state (through store.UpdatePlans) and the decision of
// what to send when. It does not sign, queue or deliver commands (the
// Commander does: enroll.Handler), does not match vulnerabilities (the
// Findings source does: vuln/scan), does not judge behaviour itself (the
// detectors did: it reads their alerts and the baseline's bounds), and
// keeps no clock of its own: Tick
// is called by its owner, with the time from the injected Clock.
package remediate
