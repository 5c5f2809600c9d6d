package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

const artifactCols = "id, product, version, classes, models, name, size, sha256, signature, created, created_by"

// PutArtifact stores a new artifact and its bytes.
func (s *Store) PutArtifact(ctx context.Context, a vigil.Artifact, data []byte) error {
	if err := store.CheckArtifact(a, data); err != nil {
		return err
	}
	classes, _ := json.Marshal(nonNil(a.Classes))
	models, _ := json.Marshal(nonNil(a.Models))
	res, err := s.pool.Exec(ctx, "INSERT INTO artifacts("+artifactCols+", data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT(id) DO NOTHING",
		a.ID, a.Product, a.Version, string(classes), string(models), a.Name, a.Size, a.SHA256, a.Signature, a.Created.UnixNano(), a.CreatedBy, data)
	if err != nil {
		return fmt.Errorf("cannot put artifact %s: %w", a.ID, err)
	}
	if res.RowsAffected() == 0 {
		return vigil.Errorf(vigil.ECONFLICT, "artifact %q exists", a.ID)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func scanArtifact(sc interface{ Scan(...any) error }) (vigil.Artifact, error) {
	var (
		a               vigil.Artifact
		classes, models string
		created         int64
	)
	if err := sc.Scan(&a.ID, &a.Product, &a.Version, &classes, &models, &a.Name, &a.Size, &a.SHA256, &a.Signature, &created, &a.CreatedBy); err != nil {
		return a, err
	}
	if err := json.Unmarshal([]byte(classes), &a.Classes); err != nil {
		return a, fmt.Errorf("artifact %s: classes: %w", a.ID, err)
	}
	if err := json.Unmarshal([]byte(models), &a.Models); err != nil {
		return a, fmt.Errorf("artifact %s: models: %w", a.ID, err)
	}
	if len(a.Classes) == 0 {
		a.Classes = nil
	}
	if len(a.Models) == 0 {
		a.Models = nil
	}
	a.Created = time.Unix(0, created).UTC()
	return a, nil
}

// GetArtifact returns an artifact's metadata.
func (s *Store) GetArtifact(ctx context.Context, id string) (vigil.Artifact, error) {
	a, err := scanArtifact(s.pool.QueryRow(ctx, "SELECT "+artifactCols+" FROM artifacts WHERE id = $1", id))
	if isNoRows(err) {
		return vigil.Artifact{}, store.NotFound("artifact", id)
	} else if err != nil {
		return vigil.Artifact{}, fmt.Errorf("cannot get artifact %s: %w", id, err)
	}
	return a, nil
}

// ArtifactData returns an artifact's bytes.
func (s *Store) ArtifactData(ctx context.Context, id string) ([]byte, error) {
	var data []byte
	err := s.pool.QueryRow(ctx, "SELECT data FROM artifacts WHERE id = $1", id).Scan(&data)
	if isNoRows(err) {
		return nil, store.NotFound("artifact", id)
	} else if err != nil {
		return nil, fmt.Errorf("cannot read artifact %s: %w", id, err)
	}
	return data, nil
}

// ListArtifacts returns the artifacts of a product ("": all).
func (s *Store) ListArtifacts(ctx context.Context, product string) ([]vigil.Artifact, error) {
	var (
		rows pgx.Rows
		err  error
	)
	if product == "" {
		rows, err = s.pool.Query(ctx, "SELECT "+artifactCols+" FROM artifacts ORDER BY product, created, id")
	} else {
		rows, err = s.pool.Query(ctx, "SELECT "+artifactCols+" FROM artifacts WHERE product = $1 ORDER BY product, created, id", product)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot list artifacts: %w", err)
	}
	defer rows.Close()
	var out []vigil.Artifact
	for rows.Next() {
		a, err := scanArtifact(rows)
		if err != nil {
			return nil, fmt.Errorf("cannot list artifacts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list artifacts: %w", err)
	}
	return out, nil
}

// DeleteArtifact removes an artifact and its bytes.
func (s *Store) DeleteArtifact(ctx context.Context, id string) error {
	res, err := s.pool.Exec(ctx, "DELETE FROM artifacts WHERE id = $1", id)
	if err != nil {
		return fmt.Errorf("cannot delete artifact %s: %w", id, err)
	}
	if res.RowsAffected() == 0 {
		return store.NotFound("artifact", id)
	}
	return nil
}
