package ingest_test

import (
	"testing"

	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/enroll"
	"github.com/vigil-iot/vigil/ingest"
)

// TestRedactorKnowsVigilTokens checks that the token prefixes the redactor
// writes out are those of the API and enrollment tokens.
func TestRedactorKnowsVigilTokens(t *testing.T) {
	var r ingest.Redactor
	for _, p := range []string{auth.TokenPrefix, enroll.TokenPrefix} {
		in := "x " + p + "AbCdEfGhIjKlMnOp y"
		if got, _ := r.String(in); got != "x "+p+ingest.Redacted+" y" {
			t.Errorf("String(%q) = %q", in, got)
		}
	}
}
