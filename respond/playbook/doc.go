// Package playbook reads and validates response playbooks: YAML files that
// say which alerts (or incident events) trigger which actions, under which
// conditions, approvals and guards, and how to roll them back.
//
// It owns the playbook format, its strict decoding with file:line errors,
// condition expressions (github.com/expr-lang/expr) and parameter templates
// (text/template). It decides whether a playbook matches an alert and
// renders the steps' parameters, but it does not create, store or execute
// actions: that is the respond.Engine's job.
package playbook
