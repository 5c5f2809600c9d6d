package node

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-iot/vigil/agent/protocol"
	"github.com/vigil-iot/vigil/bus/natsbus/natstest"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/enroll"
)

// TestServeEnrollSharedOnPostgres runs two vigil serve nodes on one
// PostgreSQL schema: an enrollment token created through node A's API
// enrolls a device on node B and cannot be used again on A; the device,
// revoked through A's API, is refused by B at its next request.
func TestServeEnrollSharedOnPostgres(t *testing.T) {
	pgURL := os.Getenv("VIGIL_TEST_POSTGRES_URL")
	if pgURL == "" {
		t.Skip("VIGIL_TEST_POSTGRES_URL is not set: no PostgreSQL to run on")
	}
	natsURL := natstest.URL(t)
	var rnd [4]byte
	rand.Read(rnd[:])
	schema := "t_enroll_" + hex.EncodeToString(rnd[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, pgURL)
		if err != nil {
			t.Log(err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Log(err)
		}
	})
	// The nodes share the CA, the command key and the audit key through
	// the store, sealed with one secrets key.
	secrets := testSecretsKey(t)
	node := func() *Node {
		cfg := DefaultConfig()
		cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
		cfg.SecretsKeyFile = secrets
		cfg.SigmaDirs = []string{t.TempDir()}
		cfg.NATSURL, cfg.BusPrefix = natsURL, natstest.UniquePrefix(t, natsURL)
		cfg.Store = StoreConfig{Driver: "postgres", URL: pgURL, Schema: schema}
		return runTestApp(t, cfg)
	}
	a := node()
	b := node()

	admin, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.ca.Pool()))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CreateEnrollToken(t.Context(), "camera", time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	// Enroll on B.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr := func() string {
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "cam"}}, key)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	}
	post := func(c *http.Client, url string, body any, out any) int {
		t.Helper()
		buf, _ := json.Marshal(body)
		resp, err := c.Post(url, "application/json", bytes.NewReader(buf))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if out != nil && resp.StatusCode < 300 {
			if err := json.Unmarshal(data, out); err != nil {
				t.Fatalf("%s: %v: %s", url, err, data)
			}
		}
		return resp.StatusCode
	}
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: client.TLSConfig(a.ca.Pool())}}
	var enrolled protocol.EnrollResponse
	if code := post(anon, b.URL()+protocol.PathEnroll, protocol.EnrollRequest{Token: tok.Token, CSR: csr(), Hostname: "cam"}, &enrolled); code != http.StatusOK && code != http.StatusCreated {
		t.Fatalf("enroll on B with a token made on A: HTTP %d", code)
	}
	if code := post(anon, a.URL()+protocol.PathEnroll, protocol.EnrollRequest{Token: tok.Token, CSR: csr(), Hostname: "cam2"}, nil); code != http.StatusUnauthorized {
		t.Fatalf("enroll again on A with the token used on B: HTTP %d, want 401", code)
	}
	list, err := a.enrollFiles.Tokens.List()
	if err != nil || len(list) != 1 || list[0].UsedBy != enrolled.DeviceID {
		t.Fatalf("enrollment tokens on A = %+v, %v; want one used by %s", list, err, enrolled.DeviceID)
	}

	// The device talks mutual TLS to B; revoked through A, B refuses it.
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	cert, err := tls.X509KeyPair([]byte(enrolled.Certificate), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	dcfg := client.TLSConfig(a.ca.Pool())
	dcfg.Certificates = []tls.Certificate{cert}
	device := &http.Client{Transport: &http.Transport{TLSClientConfig: dcfg}}
	if code := post(device, b.URL()+protocol.PathRenew, protocol.RenewRequest{CSR: csr()}, nil); code != http.StatusOK {
		t.Fatalf("renew on B before the revocation: HTTP %d, want 200", code)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "POST", a.URL()+"/api/v1/devices/"+enrolled.DeviceID+"/revoke", nil)
	req.Header.Set("Authorization", "Bearer "+a.AdminToken())
	resp, err := anon.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke on A: HTTP %d", resp.StatusCode)
	}
	if code := post(device, b.URL()+protocol.PathRenew, protocol.RenewRequest{CSR: csr()}, nil); code != http.StatusUnauthorized {
		t.Fatalf("renew on B after the revocation on A: HTTP %d, want 401", code)
	}
	if _, err := os.Stat(filepath.Join(b.cfg.DataDir, "enroll", enroll.RevokedFile)); err == nil {
		t.Fatal("node B wrote a revocation file")
	}
}

// TestServeImportsEnrollFiles starts vigil serve on a data dir of an
// older version, whose enrollment tokens and revocations are files: they
// are imported into the store (the files renamed) and keep their effect.
func TestServeImportsEnrollFiles(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	cfg.SigmaDirs = []string{t.TempDir()}
	dir := filepath.Join(cfg.DataDir, "enroll")
	old, err := enroll.OpenDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	plain, _, err := old.Tokens.Create("camera", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Revocations.RevokeDevice("cam-old"); err != nil {
		t.Fatal(err)
	}
	a := runTestApp(t, cfg)
	for _, f := range []string{enroll.TokensFile, enroll.RevokedFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s still there after the start", f)
		}
		if _, err := os.Stat(filepath.Join(dir, f+enroll.ImportedSuffix)); err != nil {
			t.Errorf("%s not renamed: %v", f, err)
		}
	}
	if tok, err := a.enrollFiles.Tokens.Peek(plain); err != nil || tok.Class != "camera" {
		t.Fatalf("imported enrollment token = %+v, %v", tok, err)
	}
	cert := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "cam-old"}, NotBefore: time.Now().Add(-time.Hour)}
	if err := a.enrollFiles.Revocations.Check(cert); err == nil {
		t.Fatal("a device revoked in the imported file is accepted")
	}
}
