package vigil

import "time"

// Artifact is an update the server keeps for devices: a package or a
// firmware image of one product at one version, for devices of the given
// classes or models (empty: any), with the SHA-256 of its bytes and the
// Ed25519 signature of those bytes by the server's update key (never the
// command key), which agents verify before installing it.
type Artifact struct {
	ID      string   `json:"id"`
	Product string   `json:"product"`
	Version string   `json:"version"`
	Classes []string `json:"classes,omitempty"`
	Models  []string `json:"models,omitempty"`
	// Name is the uploaded file's base name.
	Name string `json:"name,omitempty"`
	Size int64  `json:"size"`
	// SHA256 is the hex SHA-256 of the bytes.
	SHA256 string `json:"sha256"`
	// Signature is the base64 Ed25519 signature of the bytes by the update
	// key.
	Signature string    `json:"signature"`
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by,omitempty"`
}
