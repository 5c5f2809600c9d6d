package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/update/repo"
	"github.com/vigil-iot/vigil/web"
	"github.com/vigil-iot/vigil/web/api"
)

// ArtifactMeta is what AddArtifact says about an artifact; the server
// computes its hash and signs it with the update key.
type ArtifactMeta struct {
	Product string
	Version string
	Classes []string
	Models  []string
	Name    string
}

// AddArtifact uploads an update artifact's bytes (admin).
func (c *Client) AddArtifact(ctx context.Context, m ArtifactMeta, data []byte) (vigil.Artifact, error) {
	q := url.Values{}
	setStr(q, "product", m.Product)
	setStr(q, "version", m.Version)
	setStr(q, "name", m.Name)
	q["class"], q["model"] = m.Classes, m.Models
	b, _, err := c.do(ctx, http.MethodPost, web.PathArtifacts, q, "application/octet-stream", data)
	if err != nil {
		return vigil.Artifact{}, err
	}
	var a vigil.Artifact
	if err := json.Unmarshal(b, &a); err != nil {
		return vigil.Artifact{}, fmt.Errorf("cannot decode answer of POST %s: %w", web.PathArtifacts, err)
	}
	return a, nil
}

// ListArtifacts lists the update artifacts of a product ("": all).
func (c *Client) ListArtifacts(ctx context.Context, product string) ([]vigil.Artifact, error) {
	q := url.Values{}
	setStr(q, "product", product)
	l, _, err := list[vigil.Artifact](ctx, c, web.PathArtifacts, q)
	return l, err
}

// RemoveArtifact removes an update artifact (admin).
func (c *Client) RemoveArtifact(ctx context.Context, id string) error {
	_, _, err := c.do(ctx, http.MethodDelete, web.PathArtifacts+"/"+escape(id), nil, "", nil)
	return err
}

// UpdateKey returns the server's public update key (base64 Ed25519).
func (c *Client) UpdateKey(ctx context.Context) (string, error) {
	var k web.UpdateKeyInfo
	err := c.getJSON(ctx, web.PathUpdateKey, nil, &k)
	return k.PublicKey, err
}

// UpdateRepositories lists the configured update repositories with the
// result of their last sync on the node that answers.
func (c *Client) UpdateRepositories(ctx context.Context) ([]repo.Status, error) {
	l, _, err := list[repo.Status](ctx, c, repo.PathRepositories, nil)
	return l, err
}

// SyncUpdateRepositories makes the node read the repository named name
// ("": every one) now and returns what each sync did (admin).
func (c *Client) SyncUpdateRepositories(ctx context.Context, name string) ([]repo.Result, error) {
	q := url.Values{}
	setStr(q, "name", name)
	b, _, err := c.do(ctx, http.MethodPost, repo.PathSync, q, "", nil)
	if err != nil {
		return nil, err
	}
	var l api.List[repo.Result]
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("cannot decode answer of POST %s: %w", repo.PathSync, err)
	}
	return l.Items, nil
}
