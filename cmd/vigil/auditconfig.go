package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vigil-iot/vigil/audit"
)

// appliedConfigFile keeps, in the data dir, the configuration the server
// last started with (secrets replaced by a digest), to audit changes.
const appliedConfigFile = "config-applied.json"

// auditConfig records a config.change audit record when the configuration
// differs from the one the server last started with in this data dir
// (the first start counts as a change), naming the top-level keys that
// changed. Secrets never reach the trail: only a digest of each.
func auditConfig(ctx context.Context, cfg config, rec *audit.Recorder) error {
	cur, err := redactedConfig(cfg)
	if err != nil {
		return err
	}
	b, err := json.Marshal(cur)
	if err != nil {
		return fmt.Errorf("cannot encode the configuration: %w", err)
	}
	file := filepath.Join(cfg.DataDir, appliedConfigFile)
	old, err := os.ReadFile(file)
	if err == nil && bytes.Equal(old, b) {
		return nil
	}
	var prev map[string]any
	_ = json.Unmarshal(old, &prev)
	var changed []string
	for k, v := range cur {
		if pv, ok := prev[k]; !ok || !reflect.DeepEqual(pv, v) {
			changed = append(changed, k)
		}
	}
	for k := range prev {
		if _, ok := cur[k]; !ok {
			changed = append(changed, k)
		}
	}
	sort.Strings(changed)
	sum := sha256.Sum256(b)
	if _, err := rec.RecordJSON(ctx, "vigil", audit.ConfigChange, "config",
		map[string]any{"changed": changed, "sha256": hex.EncodeToString(sum[:]), "first": prev == nil}); err != nil {
		return err
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return fmt.Errorf("cannot record the applied configuration: %w", err)
	}
	return nil
}

// redactedConfig returns cfg as its YAML keys, with every password, secret
// and header value replaced by "sha256:<12 hex>".
func redactedConfig(cfg config) (map[string]any, error) {
	y, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot encode the configuration: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(y, &m); err != nil {
		return nil, fmt.Errorf("cannot encode the configuration: %w", err)
	}
	redact(m, false)
	// Through JSON, so that comparing with the stored copy compares like types.
	j, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("cannot encode the configuration: %w", err)
	}
	var out map[string]any
	err = json.Unmarshal(j, &out)
	return out, err
}

func redact(v any, secret bool) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			lk := strings.ToLower(k)
			x[k] = redact(e, secret || strings.Contains(lk, "password") || strings.Contains(lk, "secret") || lk == "headers")
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = redact(e, secret)
		}
		return x
	case string:
		if secret && x != "" {
			s := sha256.Sum256([]byte(x))
			return "sha256:" + hex.EncodeToString(s[:6])
		}
		return x
	default:
		return v
	}
}
