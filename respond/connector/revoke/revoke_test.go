package revoke_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/enroll"
	"github.com/vigil-iot/vigil/respond/connector/revoke"
)

func TestRevoke(t *testing.T) {
	path := filepath.Join(t.TempDir(), enroll.RevokedFile)
	revs, err := enroll.OpenRevocations(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := revoke.New(revs)
	res, err := c.Execute(context.Background(), vigil.Action{ID: "a", Type: "revoke_certificate", DeviceID: "cam-1"})
	if err != nil || res.Acknowledged.IsZero() {
		t.Fatalf("%+v %v", res, err)
	}
	var f struct {
		Devices map[string]any `json:"devices"`
	}
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &f); err != nil || f.Devices["cam-1"] == nil {
		t.Fatalf("revocation list %s", b)
	}
	if _, err := c.Execute(context.Background(), vigil.Action{ID: "b", Type: "revoke_certificate"}); err == nil {
		t.Fatal("revoked an empty device id")
	}
	if _, err := c.Execute(context.Background(), vigil.Action{ID: "c", Type: "isolate", DeviceID: "x"}); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Fatalf("wrong type: %v", err)
	}
}
