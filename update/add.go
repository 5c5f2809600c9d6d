package update

import (
	"context"
	"crypto/ed25519"
	"slices"
	"strings"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/store"
)

// ValidLabel reports whether a product, version, class or model is one
// printable word of 1 to 128 bytes.
func ValidLabel(s string) bool {
	return s != "" && len(s) <= 128 && !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

// CheckLabels returns EINVALID naming the first product, version, class
// or model of a that is not a ValidLabel.
func CheckLabels(a vigil.Artifact) error {
	for _, f := range []struct {
		what string
		vs   []string
	}{{"product", []string{a.Product}}, {"version", []string{a.Version}}, {"class", a.Classes}, {"model", a.Models}} {
		if i := slices.IndexFunc(f.vs, func(v string) bool { return !ValidLabel(v) }); i >= 0 {
			return vigil.Errorf(vigil.EINVALID, "%s %q: want one word of 1 to 128 printable characters", f.what, f.vs[i])
		}
	}
	return nil
}

// Add stores a new artifact with its bytes: a must carry its ID, labels,
// name, creation time and creator; Add sets its Size, SHA256 and
// Signature (by key, the update key) and returns it as stored. Returns
// EINVALID for a bad label or empty data, ETOOLARGE for data over
// store.MaxArtifactSize, and the store's errors.
func Add(ctx context.Context, st store.Artifacts, key ed25519.PrivateKey, a vigil.Artifact, data []byte) (vigil.Artifact, error) {
	if err := CheckLabels(a); err != nil {
		return vigil.Artifact{}, err
	}
	if len(data) == 0 {
		return vigil.Artifact{}, vigil.Errorf(vigil.EINVALID, "the artifact is empty")
	}
	if len(data) > store.MaxArtifactSize {
		return vigil.Artifact{}, vigil.Errorf(vigil.ETOOLARGE, "artifact is over %d bytes", store.MaxArtifactSize)
	}
	a.Size = int64(len(data))
	var err error
	if a.SHA256, a.Signature, err = command.SignArtifact(key, data); err != nil {
		return vigil.Artifact{}, err
	}
	if err := st.PutArtifact(ctx, a, data); err != nil {
		return vigil.Artifact{}, err
	}
	return a, nil
}
