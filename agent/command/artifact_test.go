package command

import (
	"crypto/ed25519"
	"strings"
	"testing"
)

func TestVerifyArtifact(t *testing.T) {
	updPub, updPriv := keys(t)
	_, cmdPriv := keys(t) // the command key must not make an artifact pass
	data := []byte("\x7fELF firmware 2.1.0")
	sum, sig, err := SignArtifact(updPriv, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyArtifact(updPub, data, sum, sig); err != nil {
		t.Fatal(err)
	}
	_, cmdSig, _ := SignArtifact(cmdPriv, data)
	for name, c := range map[string]struct {
		key       ed25519.PublicKey
		data      []byte
		sum, sig  string
		wantError string
	}{
		"tampered":            {updPub, append([]byte("x"), data...), sum, sig, "sha256 is"},
		"signed by other key": {updPub, data, sum, cmdSig, "does not verify"},
		"bad hex":             {updPub, data, "zz" + sum[2:], sig, "not 64 hex digits"},
		"short sum":           {updPub, data, sum[:10], sig, "not 64 hex digits"},
		"bad signature":       {updPub, data, sum, "!!" + sig[2:], "not a base64 Ed25519"},
		"no key":              {nil, data, sum, sig, "no update key"},
	} {
		if err := VerifyArtifact(c.key, c.data, c.sum, c.sig); err == nil || !strings.Contains(err.Error(), c.wantError) {
			t.Errorf("%s: %v, want %q", name, err, c.wantError)
		}
	}
	if _, _, err := SignArtifact(nil, data); err == nil {
		t.Error("signed with no key")
	}
}

// FuzzVerifyArtifact: whatever the sum and signature strings, verification
// never panics and never accepts bytes other than the signed ones.
func FuzzVerifyArtifact(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	signed := []byte("firmware")
	sum, sig, _ := SignArtifact(priv, signed)
	f.Add([]byte("firmware"), sum, sig)
	f.Add([]byte("firmwarE"), sum, sig)
	f.Add([]byte{}, "", "")
	f.Add([]byte("x"), strings.Repeat("0", 64), strings.Repeat("A", 88))
	f.Fuzz(func(t *testing.T, data []byte, s, g string) {
		if err := VerifyArtifact(pub, data, s, g); err == nil && string(data) != string(signed) {
			t.Fatalf("accepted %q with %q %q", data, s, g)
		}
	})
}
