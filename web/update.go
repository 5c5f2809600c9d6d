package web

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/update"
	"github.com/vigil-iot/vigil/web/api"
)

// Paths of the update-artifact routes.
const (
	PathArtifacts = api.Prefix + "/update/artifacts"
	PathArtifact  = api.Prefix + "/update/artifacts/{id}"
	PathUpdateKey = api.Prefix + "/update/key"
)

// Updates is what the update routes serve: the artifact store and the
// update key that signs every artifact added (never the command key).
type Updates struct {
	Store  store.Artifacts
	Key    ed25519.PrivateKey
	Clock  vigil.Clock
	Logger *slog.Logger
}

// UpdateKeyInfo is the answer of GET /api/v1/update/key: the public half
// of the update key, which agents verify artifacts with.
type UpdateKeyInfo struct {
	// PublicKey is the base64 Ed25519 public key.
	PublicKey string `json:"public_key"`
}

// UpdateRoutes are the update-artifact routes, for Options.Extra:
//
//	POST   /api/v1/update/artifacts?product=P&version=V[&class=C]...[&model=M]...[&name=N]
//	       body: the artifact's bytes (at most store.MaxArtifactSize); the
//	       server hashes and signs them (admin, audited update_artifact.add)
//	GET    /api/v1/update/artifacts[?product=P]  (read)
//	GET    /api/v1/update/artifacts/{id}        (read; metadata)
//	DELETE /api/v1/update/artifacts/{id}        (admin, audited update_artifact.remove)
//	GET    /api/v1/update/key                   (read; the public update key)
func UpdateRoutes(u *Updates) []Route {
	log := u.Logger
	if log == nil {
		log = slog.Default()
	}
	h := ErrorHandler(log)
	return []Route{
		{Method: "POST", Pattern: PathArtifacts, Perm: auth.PermAdmin, Action: "update_artifact.add", Handler: h(u.add)},
		{Method: "GET", Pattern: PathArtifacts, Perm: auth.PermRead, Handler: h(u.list)},
		{Method: "GET", Pattern: PathArtifact, Perm: auth.PermRead, Handler: h(u.get)},
		{Method: "DELETE", Pattern: PathArtifact, Perm: auth.PermAdmin, Action: "update_artifact.remove", Handler: h(u.remove)},
		{Method: "GET", Pattern: PathUpdateKey, Perm: auth.PermRead, Handler: h(u.key)},
	}
}

func (u *Updates) add(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	a := vigil.Artifact{ID: vigil.NewID(), Product: q.Get("product"), Version: q.Get("version"),
		Classes: q["class"], Models: q["model"], Name: filepath.Base(q.Get("name")), Created: u.Clock.Now().UTC()}
	if a.Name == "." || a.Name == "/" {
		a.Name = ""
	}
	if err := update.CheckLabels(a); err != nil {
		return err
	}
	a.CreatedBy = Actor(r.Context())
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, store.MaxArtifactSize))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return vigil.Errorf(vigil.ETOOLARGE, "artifact is over %d bytes", mb.Limit)
		}
		return vigil.Errorf(vigil.EINVALID, "cannot read the artifact: %v", err)
	}
	if len(data) == 0 {
		return vigil.Errorf(vigil.EINVALID, "the artifact is empty: send its bytes as the request body")
	}
	if a, err = update.Add(r.Context(), u.Store, u.Key, a, data); err != nil {
		return err
	}
	Audit(r, "artifact:"+a.ID, "product="+a.Product+" version="+a.Version+" sha256="+a.SHA256)
	writeJSON(w, http.StatusCreated, a)
	return nil
}

func (u *Updates) list(w http.ResponseWriter, r *http.Request) error {
	as, err := u.Store.ListArtifacts(r.Context(), r.URL.Query().Get("product"))
	if err != nil {
		return err
	}
	if as == nil {
		as = []vigil.Artifact{}
	}
	writeJSON(w, http.StatusOK, api.List[vigil.Artifact]{Items: as})
	return nil
}

func (u *Updates) get(w http.ResponseWriter, r *http.Request) error {
	a, err := u.Store.GetArtifact(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (u *Updates) remove(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := u.Store.DeleteArtifact(r.Context(), id); err != nil {
		return err
	}
	Audit(r, "artifact:"+id, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (u *Updates) key(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, UpdateKeyInfo{PublicKey: base64.StdEncoding.EncodeToString(u.Key.Public().(ed25519.PublicKey))})
	return nil
}
