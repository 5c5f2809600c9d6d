package repo

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/update"
)

// MaxIndexSize bounds the bytes of an index (4 MiB: tens of thousands of
// entries).
const MaxIndexSize = 4 << 20

// Index is a repository's list of artifacts:
//
//	{"artifacts": [
//	  {"name": "cam-fw-2.4.1.bin", "product": "acme-cam-fw", "version": "2.4.1",
//	   "classes": ["camera"], "models": ["C200"],
//	   "url": "files/cam-fw-2.4.1.bin",
//	   "sha256": "<64 hex digits>", "size": 1048576}]}
type Index struct {
	Artifacts []Entry `json:"artifacts"`
}

// Entry is one artifact of an index. URL is absolute (http or https) or
// relative to the index's URL; Size is its exact number of bytes.
type Entry struct {
	Name    string   `json:"name"`
	Product string   `json:"product"`
	Version string   `json:"version"`
	Classes []string `json:"classes,omitempty"`
	Models  []string `json:"models,omitempty"`
	URL     string   `json:"url"`
	SHA256  string   `json:"sha256"`
	Size    int64    `json:"size"`
}

// ParseIndex reads an index and checks every entry: labels as an upload
// has them, a URL, 64 hex digits of SHA-256 and a size of 1 byte to
// store.MaxArtifactSize. Unknown fields are allowed (a later format may
// add some); an error names the entry (its position and product/version).
func ParseIndex(data []byte) (Index, error) {
	if len(data) > MaxIndexSize {
		return Index{}, fmt.Errorf("cannot read index: %d bytes, over %d", len(data), MaxIndexSize)
	}
	var ix Index
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&ix); err != nil {
		return Index{}, fmt.Errorf("cannot read index: %w", vigil.JSONErrorAt(err))
	}
	if dec.More() {
		return Index{}, fmt.Errorf("cannot read index: data after the JSON object")
	}
	for i, e := range ix.Artifacts {
		if err := e.check(); err != nil {
			return Index{}, fmt.Errorf("cannot read index: entry %d (%s %s): %w", i, e.Product, e.Version, err)
		}
	}
	return ix, nil
}

func (e Entry) check() error {
	if err := update.CheckLabels(vigil.Artifact{Product: e.Product, Version: e.Version, Classes: e.Classes, Models: e.Models}); err != nil {
		return errors.New(vigil.ErrorMessage(err))
	}
	if b, err := hex.DecodeString(e.SHA256); err != nil || len(b) != 32 {
		return fmt.Errorf("sha256 %q is not 64 hex digits", e.SHA256)
	}
	if e.Size < 1 || e.Size > store.MaxArtifactSize {
		return fmt.Errorf("size %d is not in 1..%d", e.Size, store.MaxArtifactSize)
	}
	if e.URL == "" {
		return fmt.Errorf("no url")
	}
	if _, err := url.Parse(e.URL); err != nil {
		return fmt.Errorf("url %q: %w", e.URL, err)
	}
	return nil
}

// resolve returns the entry's absolute URL against the index's.
func (e Entry) resolve(index *url.URL) (*url.URL, error) {
	u, err := index.Parse(e.URL)
	if err != nil {
		return nil, fmt.Errorf("url %q: %w", e.URL, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("url %q: want http or https", e.URL)
	}
	return u, nil
}

// fileName is the artifact's name: the entry's, else the URL's last
// element.
func (e Entry) fileName(u *url.URL) string {
	n := path.Base(e.Name)
	if e.Name == "" || n == "." || n == "/" {
		n = path.Base(u.Path)
	}
	if n == "." || n == "/" {
		return ""
	}
	return n
}
