// Package respond is Vigil's response stage: it runs playbooks on stored
// alerts and incident events, creates governed actions, moves them through
// their state machine (pending_approval → approved → sent → acknowledged →
// succeeded | failed | timed_out | rolled_back, or denied), hands them to
// connectors, and audits every transition.
//
// It owns the Engine, the Connector interface and the guards (rate bounds,
// safety-critical devices, dry-run). Playbook parsing lives in
// respond/playbook, connectors in respond/connector/<name>. It persists
// actions through store.Actions and reads devices, alerts and incidents,
// but it does not change incidents itself: containment goes to the
// Options.OnContained callback (the incident correlator's Contain). It
// must not import its connector packages: cmd wires them in.
package respond
