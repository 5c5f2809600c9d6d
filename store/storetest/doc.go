// Package storetest is the conformance suite of store.Store: every store
// implementation runs Run from its own tests, and must pass it whole.
//
// The suite checks behaviour through the interface only, against a
// reference model written in Go (vigil.Event.FieldString for field
// filters, plain sorting for orders). It must not depend on any
// implementation, and it holds no test of speed.
package storetest
