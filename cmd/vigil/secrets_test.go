package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestHelpDoesNotPrintTheToken checks that $VIGIL_TOKEN is never shown as
// a flag default in help, while the commands still use it.
func TestHelpDoesNotPrintTheToken(t *testing.T) {
	const secret = "vgl_secret_must_not_show_0123456789"
	t.Setenv("VIGIL_TOKEN", secret)
	for _, args := range [][]string{{"ctl", "--help"}, {"ctl", "devices", "--help"}, {"sensor", "--help"}, {"sensor", "enroll", "--help"}} {
		out, code := run(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, out)
		}
		if strings.Contains(out, secret) {
			t.Errorf("%v prints the token from $VIGIL_TOKEN:\n%s", args, out)
		}
		if !strings.Contains(out, "$VIGIL_TOKEN") {
			t.Errorf("%v does not say the token comes from $VIGIL_TOKEN:\n%s", args, out)
		}
	}
	o := &ctlOptions{}
	o.addConnFlags(&cobra.Command{Use: "x"})
	if o.token != secret {
		t.Errorf("token = %q, want the value of $VIGIL_TOKEN", o.token)
	}
}
