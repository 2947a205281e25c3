package audit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/eventually"
)

// The tests in this file run a real Vault server (v1.14.8, built from the
// module proxy by tools/vault/build.sh and cached by version): no double
// of Vault. scripts/test.sh builds it and sets TRIBUTARY_VAULT_BIN; without
// the variable a cached build is used, and without one the tests skip.

// vaultBinary returns the Vault server binary.
func vaultBinary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("TRIBUTARY_VAULT_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("TRIBUTARY_VAULT_BIN: %v", err)
		}
		return bin
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "tools", "vault", "build.sh")
	out, err := exec.Command(script, "--cached").Output()
	if err != nil {
		t.Skipf("no Vault server binary: run tools/vault/build.sh once (about 20 min cold) or set TRIBUTARY_VAULT_BIN")
	}
	return strings.TrimSpace(string(out))
}

// vaultServer is a Vault server process: dev mode (in memory, unsealed,
// root token "root") or file storage (initialised, unsealed, survives a
// restart).
type vaultServer struct {
	bin, dir, addr, token, unsealKey string
	caFile                           string // the CA of a TLS listener
	args                             []string
	cmd                              *exec.Cmd
	logs                             *bytes.Buffer
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startVaultDev starts a dev-mode server with transit enabled.
func startVaultDev(t testing.TB) *vaultServer {
	t.Helper()
	v := &vaultServer{bin: vaultBinary(t), dir: t.TempDir(), token: "root"}
	hostport := freeAddr(t)
	v.addr = "http://" + hostport
	v.args = []string{"server", "-dev", "-dev-root-token-id=root", "-dev-listen-address=" + hostport, "-dev-no-store-token"}
	v.start(t)
	v.mountTransit(t)
	return v
}

// startVaultTLS starts a dev server whose listener speaks only TLS, with
// a certificate from a CA the server generates (-dev-tls).
func startVaultTLS(t testing.TB) *vaultServer {
	t.Helper()
	v := &vaultServer{bin: vaultBinary(t), dir: t.TempDir(), token: "root"}
	hostport := freeAddr(t)
	v.addr = "https://" + hostport
	v.caFile = filepath.Join(v.dir, "vault-ca.pem")
	v.args = []string{"server", "-dev", "-dev-tls", "-dev-tls-cert-dir=" + v.dir, "-dev-root-token-id=root", "-dev-listen-address=" + hostport, "-dev-no-store-token"}
	v.start(t)
	v.mountTransit(t)
	return v
}

// startVaultFile starts a server on file storage, initialises and unseals
// it and enables transit; stop and start it to make an outage.
func startVaultFile(t testing.TB) *vaultServer {
	t.Helper()
	v := &vaultServer{bin: vaultBinary(t), dir: t.TempDir()}
	hostport := freeAddr(t)
	v.addr = "http://" + hostport
	conf := fmt.Sprintf("storage \"file\" {\n  path = %q\n}\nlistener \"tcp\" {\n  address = %q\n  tls_disable = true\n}\ndisable_mlock = true\napi_addr = %q\n",
		filepath.Join(v.dir, "data"), hostport, v.addr)
	if err := os.WriteFile(filepath.Join(v.dir, "vault.hcl"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	v.args = []string{"server", "-config=" + filepath.Join(v.dir, "vault.hcl")}
	v.start(t)
	c := v.client(t)
	init, err := c.Sys().Init(&vault.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatalf("vault init: %v", err)
	}
	v.token, v.unsealKey = init.RootToken, init.KeysB64[0]
	v.unseal(t)
	v.mountTransit(t)
	return v
}

func (v *vaultServer) start(t testing.TB) {
	t.Helper()
	v.logs = &bytes.Buffer{}
	v.cmd = exec.Command(v.bin, v.args...)
	v.cmd.Env = append(os.Environ(), "HOME="+v.dir, "VAULT_ADDR="+v.addr)
	v.cmd.Stdout, v.cmd.Stderr = v.logs, v.logs
	if err := v.cmd.Start(); err != nil {
		t.Fatalf("start vault: %v", err)
	}
	t.Cleanup(func() { v.stop() })
	started := false
	defer func() {
		if !started { // the wait failed the test
			t.Logf("vault output:\n%s", v.logs)
		}
	}()
	eventually.NoError(t, "vault to start", 30*time.Second, func() error {
		resp, err := v.httpClient().Get(v.addr + "/v1/sys/health?uninitcode=200&sealedcode=200")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health status %d", resp.StatusCode)
		}
		return nil
	})
	started = true
	if v.unsealKey != "" {
		v.unseal(t)
	}
}

// stop kills the server and waits for it: an outage.
func (v *vaultServer) stop() {
	if v.cmd == nil || v.cmd.Process == nil {
		return
	}
	_ = v.cmd.Process.Signal(syscall.SIGKILL)
	_ = v.cmd.Wait()
	v.cmd = nil
}

func (v *vaultServer) unseal(t testing.TB) {
	t.Helper()
	if _, err := v.client(t).Sys().Unseal(v.unsealKey); err != nil {
		t.Fatalf("unseal: %v", err)
	}
}

// httpClient trusts the server's CA, once a TLS listener has written it.
func (v *vaultServer) httpClient() *http.Client {
	if v.caFile == "" {
		return http.DefaultClient
	}
	pem, err := os.ReadFile(v.caFile)
	if err != nil {
		return http.DefaultClient // not written yet: the request fails and is retried
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func (v *vaultServer) client(t testing.TB) *vault.Client {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = v.addr
	if v.caFile != "" {
		if err := cfg.ConfigureTLS(&vault.TLSConfig{CACert: v.caFile}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(v.token)
	return c
}

func (v *vaultServer) mountTransit(t testing.TB) {
	t.Helper()
	if err := v.client(t).Sys().Mount("transit", &vault.MountInput{Type: "transit"}); err != nil {
		t.Fatalf("mount transit: %v", err)
	}
}

// policyToken loads deploy/vault/audit-policy.hcl and returns a renewable
// token holding only that policy, so every test proves the policy suffices.
func (v *vaultServer) policyToken(t testing.TB) string {
	t.Helper()
	c := v.client(t)
	_, file, _, _ := runtime.Caller(0)
	policy, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "deploy", "vault", "audit-policy.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().PutPolicy("tributary-audit", string(policy)); err != nil {
		t.Fatalf("put policy: %v", err)
	}
	s, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"tributary-audit"}, TTL: "1h", Renewable: boolPtr(true)})
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	return s.Auth.ClientToken
}

func boolPtr(b bool) *bool { return &b }

func vaultKeys(t testing.TB, v *vaultServer, token string) *VaultKeys {
	t.Helper()
	k, err := NewVaultKeys(context.Background(), VaultConfig{Addr: v.addr, Token: token, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("NewVaultKeys: %v", err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// tenantMsgs returns n messages on one partition from offset from, the
// tenants taking turns.
func tenantMsgs(from, n int, tenants ...string) []kafka.Message {
	var out []kafka.Message
	for i := from; i < from+n; i++ {
		out = append(out, testMsg("tributary.queries.received.v1", 0, int64(i), tenants[i%len(tenants)], "tributary.query.received"))
	}
	return out
}

func countByTenant(t *testing.T, l *Log, only func(string) bool) (records map[string]int, shredded map[string]int) {
	t.Helper()
	records, shredded = map[string]int{}, map[string]int{}
	err := l.Scan(context.Background(), only, func(e Entry) error {
		if e.Shredded {
			shredded[e.Tenant]++
		} else {
			records[e.Tenant]++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return records, shredded
}

// TestVaultEnvelope writes interleaved tenants under Vault transit with a
// token of the service's policy: one transit key per tenant, wrapped keys
// in the key files, every record verified and decrypted through
// transit/decrypt; a tampered wrapped key is reported, a wrong token
// refused at start.
func TestVaultEnvelope(t *testing.T) {
	v := startVaultDev(t)
	k := vaultKeys(t, v, v.policyToken(t))
	ctx := context.Background()
	dir := t.TempDir()
	l, err := Open(ctx, dir, k, WithSegmentSize(4096))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 90; i += 9 {
		if _, err := l.Append(ctx, tenantMsgs(i, 9, "acme", "globex", "")); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	recs, _ := countByTenant(t, l, nil)
	if recs["acme"] != 30 || recs["globex"] != 30 || recs[""] != 30 {
		t.Errorf("records by tenant = %v, want 30 each", recs)
	}
	// A tenant's export decrypts only its own slots.
	only, _ := countByTenant(t, l, func(t string) bool { return t == "globex" })
	if len(only) != 1 || only["globex"] != 30 {
		t.Errorf("globex-only scan = %v", only)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	names, err := k.Keys(ctx)
	if err != nil || strings.Join(names, ",") != "tributary-audit-system,tributary-audit-t-acme,tributary-audit-t-globex" {
		t.Errorf("transit keys = %v, %v", names, err)
	}
	rep, err := Verify(ctx, dir, k)
	if err != nil || rep.Records != 90 || !rep.Decrypted || len(rep.Shredded) != 0 || rep.Segments < 2 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	kf, err := os.ReadFile(keyFilePath(segPath(dir, 0)))
	if err != nil || !bytes.Contains(kf, []byte(`"key_id":"tributary-audit-t-acme"`)) {
		t.Errorf("key file = %s, %v", kf, err)
	}
	wrapped, _ := readKeyFile(segPath(dir, 0))
	if !strings.HasPrefix(string(wrapped[0].Wrapped), "vault:v1:") {
		t.Errorf("wrapped key = %q, want a transit ciphertext", wrapped[0].Wrapped)
	}

	// A wrapped key changed in the key file: Vault refuses it.
	d := copyDir(t, dir)
	w, _ := readKeyFile(segPath(d, 1))
	ref := w[1]
	ref.Wrapped = bytes.Clone(ref.Wrapped)
	ref.Wrapped[len(ref.Wrapped)-3] ^= 0x01
	w[1] = ref
	if err := writeKeyFile(segPath(d, 1), w); err != nil {
		t.Fatal(err)
	}
	_, err = Verify(ctx, d, k)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Segment != segmentName(1) || !strings.Contains(err.Error(), "wrapped data key refused") {
		t.Errorf("Verify(tampered wrapped key) = %v, want a tamper report on segment 1", err)
	}

	// Wrong token, unknown auth method.
	if _, err := NewVaultKeys(ctx, VaultConfig{Addr: v.addr, Token: "not-a-token"}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("NewVaultKeys(wrong token) = %v, want 403", err)
	}
	if _, err := NewVaultKeys(ctx, VaultConfig{Addr: v.addr, Auth: "ldap"}); err == nil || !strings.Contains(err.Error(), "unknown auth method") {
		t.Errorf("NewVaultKeys(ldap) = %v", err)
	}
}

// TestVaultRotateRewrapShred rotates, rewraps and shreds through the
// service with the service's policy: new segments use the new key
// version, rewrap moves every stored data key to it without touching a
// record, and after a shred the tenant's earlier records are reported as
// shredded (count and range) while the chain and every other tenant still
// verify, and the tenant's later records are readable.
func TestVaultRotateRewrapShred(t *testing.T) {
	v := startVaultDev(t)
	k := vaultKeys(t, v, v.policyToken(t))
	ctx := context.Background()
	dir := t.TempDir()
	l, err := Open(ctx, dir, k, WithSegmentSize(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	svc := NewService(l, k, nil)
	admin := Principal{Tenant: "bank", Name: "officer", Groups: []string{GroupCompliance, GroupComplianceAdmin}}
	if _, err := l.Append(ctx, tenantMsgs(0, 20, "acme", "globex")); err != nil {
		t.Fatal(err)
	}
	res, err := svc.Admin(ctx, admin, AdminRequest{Action: ActionRotate})
	if err != nil || len(res.Keys) != 2 {
		t.Fatalf("rotate = %+v, %v", res, err)
	}
	segBytes := func() []byte { b, _ := os.ReadFile(segPath(dir, 0)); return b }
	before := segBytes() // sealed by the rotation
	if _, err := l.Append(ctx, tenantMsgs(20, 10, "acme", "globex")); err != nil {
		t.Fatal(err)
	}
	w1, _ := readKeyFile(segPath(dir, 1))
	if len(w1) != 2 || !strings.HasPrefix(string(w1[0].Wrapped), "vault:v2:") {
		t.Fatalf("after rotation the new segment's keys are %v, want version 2", w1)
	}
	res, err = svc.Admin(ctx, admin, AdminRequest{Action: ActionRewrap, RaiseMinDecryption: true})
	if err != nil || res.Rewrapped != 4 || len(res.Keys) != 2 {
		t.Fatalf("rewrap = %+v, %v; want 4 keys rewrapped, 2 raised", res, err)
	}
	w0, _ := readKeyFile(segPath(dir, 0))
	for _, r := range w0 {
		if !strings.HasPrefix(string(r.Wrapped), "vault:v2:") {
			t.Errorf("after rewrap segment 0 keeps %q", r.Wrapped)
		}
	}
	if !bytes.Equal(segBytes(), before) {
		t.Errorf("rewrap changed the sealed segment's bytes")
	}
	if recs, _ := countByTenant(t, l, nil); recs["acme"] != 15 || recs["globex"] != 15 {
		t.Fatalf("after rewrap records = %v", recs)
	}

	// Shred acme: refused to a non-admin, done for the admin.
	officer := Principal{Tenant: "acme", Name: "o", Groups: []string{GroupCompliance}}
	if _, err := svc.Admin(ctx, officer, AdminRequest{Action: ActionShred, Tenant: "acme"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("shred by a non-admin = %v, want forbidden", err)
	}
	if _, err := svc.Admin(ctx, admin, AdminRequest{Action: ActionShred, Tenant: "acme"}); err != nil {
		t.Fatalf("shred: %v", err)
	}
	if _, err := l.Append(ctx, tenantMsgs(30, 4, "acme", "globex")); err != nil {
		t.Fatal(err)
	}
	recs, shredded := countByTenant(t, l, nil)
	if shredded["acme"] != 15 || recs["acme"] != 2 || recs["globex"] != 17 {
		t.Errorf("after shred: records %v, shredded %v; want 15 acme shredded, 2 new acme, 17 globex", recs, shredded)
	}
	// The export of acme reports the shredded range instead of failing.
	seq, err := svc.Export(ctx, officer, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var tally shredTally
	n := 0
	for e, err := range seq {
		if err != nil {
			t.Fatalf("export: %v", err)
		}
		if e.Shredded {
			tally.add(e.Tenant, e.Seq)
		} else {
			n++
		}
	}
	if n != 2 || len(tally.ranges) != 1 || tally.ranges[0] != (ShredRange{Tenant: "acme", Records: 15, FirstSeq: 1, LastSeq: 29}) {
		t.Errorf("acme export: %d records, shredded %+v", n, tally.ranges)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Offline: the chain verifies with and without Vault, and a reopen
	// (which decrypts everything it can) works.
	rep, err := Verify(ctx, dir, k)
	if err != nil || rep.Records != 34 || len(rep.Shredded) != 1 || rep.Shredded[0].Records != 15 {
		t.Errorf("Verify after shred = %+v, %v", rep, err)
	}
	if keyless, err := Verify(ctx, dir, nil); err != nil || keyless.Head != rep.Head {
		t.Errorf("keyless Verify = %+v, %v", keyless, err)
	}
	l2, err := Open(ctx, dir, k)
	if err != nil {
		t.Fatalf("reopen after shred: %v", err)
	}
	l2.Close()
}

// TestVaultOutage stops Vault (a file-storage server, so its keys survive)
// while records of a new tenant wait for a data key: Append writes nothing
// and says ErrKeysUnavailable without failing the log, the consumer's
// record step retries without committing and reports not-ready, and when
// Vault is back the same batch is recorded and the log verifies.
// TestVaultTLS: the audit reaches Vault over TLS only with the CA it is
// given (--vault-cacert / VAULT_CACERT); an unknown or wrong CA is a clear
// error at start, never a fallback to no verification.
func TestVaultTLS(t *testing.T) {
	v := startVaultTLS(t)
	ctx := context.Background()
	t.Setenv("VAULT_CACERT", "") // the client library also reads it
	t.Setenv("VAULT_SKIP_VERIFY", "")

	k, err := NewVaultKeys(ctx, VaultConfig{Addr: v.addr, Token: v.token, CACert: v.caFile, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	defer k.Close()
	dk, err := k.NewDataKey(ctx, "acme")
	if err != nil {
		t.Fatalf("data key over TLS: %v", err)
	}
	key, err := k.UnwrapKey(ctx, KeyRef{KeyID: dk.KeyID, Wrapped: dk.Wrapped})
	if err != nil || !bytes.Equal(key, dk.Key) {
		t.Fatalf("unwrap over TLS: %v (equal %v)", err, bytes.Equal(key, dk.Key))
	}

	otherCA := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(otherCA, selfSignedCA(t), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, ca := range map[string]string{"no CA": "", "another CA": otherCA} {
		_, err := NewVaultKeys(ctx, VaultConfig{Addr: v.addr, Token: v.token, CACert: ca, Timeout: 5 * time.Second})
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: err = %v, want a certificate error", name, err)
		}
	}
	if _, err := NewVaultKeys(ctx, VaultConfig{Addr: v.addr, Token: v.token, CACert: filepath.Join(t.TempDir(), "missing.pem")}); err == nil || !strings.Contains(err.Error(), "ca cert") {
		t.Errorf("missing CA file: err = %v, want one naming the CA file", err)
	}
}

// selfSignedCA returns the PEM of a fresh CA certificate that signed
// nothing the server presents.
func selfSignedCA(t testing.TB) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "not vault's CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestVaultOutage(t *testing.T) {
	v := startVaultFile(t)
	k := vaultKeys(t, v, v.policyToken(t))
	ctx := context.Background()
	dir := t.TempDir()
	l, err := Open(ctx, dir, k)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(ctx, tenantMsgs(0, 4, "acme")); err != nil {
		t.Fatal(err)
	}
	v.stop()
	if _, err := l.Append(ctx, tenantMsgs(4, 4, "acme", "globex")); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("Append with Vault down = %v, want ErrKeysUnavailable", err)
	}
	// Tenants that already have a data key in the segment go on.
	if n, err := l.Append(ctx, tenantMsgs(4, 1, "acme")); err != nil || n != 1 {
		t.Fatalf("Append(known tenant) = %d, %v", n, err)
	}
	c := NewConsumer(ConsumerConfig{}, MakeRecordEndpoint(NewService(l, k, nil)), nil)
	done := make(chan error, 1)
	go func() { done <- c.record(ctx, tenantMsgs(5, 4, "acme", "globex")) }()
	eventually.True(t, "the consumer to turn not ready while Vault is down", 10*time.Second, func() bool {
		return c.Ready(ctx) != nil
	})
	if err := k.Ping(ctx); !errors.Is(err, ErrKeysUnavailable) {
		t.Errorf("Ping with Vault down = %v", err)
	}
	v.start(t)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("record after Vault returned: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the batch was not recorded after Vault returned")
	}
	if err := c.Ready(ctx); err != nil {
		t.Errorf("not ready after catching up: %v", err)
	}
	if seq, _ := l.Stats(); seq != 9 {
		t.Errorf("last seq = %d, want 9", seq)
	}
	if recs, _ := countByTenant(t, l, nil); recs["acme"] != 7 || recs["globex"] != 2 {
		t.Errorf("records = %v", recs)
	}
}

// TestVaultHangs: a server that accepts connections and never answers is
// an outage (ErrKeysUnavailable after the timeout), not a stall.
func TestVaultHangs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	begin := time.Now()
	_, err = NewVaultKeys(context.Background(), VaultConfig{Addr: "http://" + ln.Addr().String(), Token: "t", Timeout: 300 * time.Millisecond})
	if err == nil || time.Since(begin) > 5*time.Second {
		t.Fatalf("NewVaultKeys(hanging server) = %v after %v", err, time.Since(begin))
	}
}

// TestVaultAuthMethods logs in with AppRole (secret id from a string and
// from a file) and with the Kubernetes method, each role holding only the
// service's policy, and makes a data key with the token it got. The
// Kubernetes method's TokenReview call goes to a small stand-in for the
// Kubernetes API (Vault itself is real).
func TestVaultAuthMethods(t *testing.T) {
	v := startVaultDev(t)
	v.policyToken(t) // loads the policy
	c := v.client(t)
	ctx := context.Background()
	check := func(name string, cfg VaultConfig) {
		t.Helper()
		cfg.Addr, cfg.Timeout = v.addr, 5*time.Second
		k, err := NewVaultKeys(ctx, cfg)
		if err != nil {
			t.Fatalf("%s: NewVaultKeys: %v", name, err)
		}
		defer k.Close()
		dk, err := k.NewDataKey(ctx, "acme")
		if err != nil || len(dk.Key) != DataKeySize {
			t.Fatalf("%s: NewDataKey = %v", name, err)
		}
		if _, err := k.UnwrapKey(ctx, KeyRef{KeyID: dk.KeyID, Wrapped: dk.Wrapped}); err != nil {
			t.Fatalf("%s: UnwrapKey: %v", name, err)
		}
	}

	// AppRole.
	if err := c.Sys().EnableAuthWithOptions("approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("auth/approle/role/audit", map[string]any{"token_policies": "tributary-audit", "token_ttl": "1h", "token_max_ttl": "4h"}); err != nil {
		t.Fatal(err)
	}
	rid, err := c.Logical().Read("auth/approle/role/audit/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := c.Logical().Write("auth/approle/role/audit/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	roleID, secretID := rid.Data["role_id"].(string), sid.Data["secret_id"].(string)
	check("approle", VaultConfig{Auth: VaultAuthAppRole, RoleID: roleID, SecretID: secretID})
	sidFile := filepath.Join(t.TempDir(), "secret-id")
	if err := os.WriteFile(sidFile, []byte(secretID), 0o600); err != nil {
		t.Fatal(err)
	}
	check("approle from file", VaultConfig{Auth: VaultAuthAppRole, RoleID: roleID, SecretIDFile: sidFile})
	if _, err := NewVaultKeys(ctx, VaultConfig{Addr: v.addr, Auth: VaultAuthAppRole, RoleID: roleID, SecretID: "wrong"}); err == nil {
		t.Errorf("approle with a wrong secret id logged in")
	}

	// Kubernetes.
	jwt := serviceAccountJWT(t, "tributary", "audit")
	kube := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review struct {
			Spec struct {
				Token string `json:"token"`
			} `json:"spec"`
		}
		_ = json.NewDecoder(r.Body).Decode(&review)
		ok := r.URL.Path == "/apis/authentication.k8s.io/v1/tokenreviews" && review.Spec.Token == jwt
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
			"status": map[string]any{"authenticated": ok, "user": map[string]any{
				"username": "system:serviceaccount:tributary:audit", "uid": "uid-audit",
				"groups": []string{"system:serviceaccounts"}}},
		})
	}))
	defer kube.Close()
	if err := c.Sys().EnableAuthWithOptions("kubernetes", &vault.EnableAuthOptions{Type: "kubernetes"}); err != nil {
		t.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kube.Certificate().Raw})
	if _, err := c.Logical().Write("auth/kubernetes/config", map[string]any{"kubernetes_host": kube.URL, "kubernetes_ca_cert": string(caPEM), "disable_local_ca_jwt": true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("auth/kubernetes/role/audit", map[string]any{
		"bound_service_account_names": "audit", "bound_service_account_namespaces": "tributary",
		"token_policies": "tributary-audit", "token_ttl": "1h"}); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(jwt), 0o600); err != nil {
		t.Fatal(err)
	}
	check("kubernetes", VaultConfig{Auth: VaultAuthKubernetes, K8sRole: "audit", K8sTokenPath: tokenFile})
}

// serviceAccountJWT returns an RS256 token shaped like a Kubernetes
// service-account token.
func serviceAccountJWT(t *testing.T, namespace, name string) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(map[string]any{
		"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:" + namespace + ":" + name,
		"kubernetes.io/serviceaccount/namespace":            namespace,
		"kubernetes.io/serviceaccount/service-account.name": name,
		"kubernetes.io/serviceaccount/service-account.uid":  "uid-audit",
		"kubernetes.io/serviceaccount/secret.name":          name + "-token",
	})
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// TestVaultTokenRenewal: a token that lives 2 s is kept alive by the
// lifetime watcher past its first TTL.
func TestVaultTokenRenewal(t *testing.T) {
	v := startVaultDev(t)
	v.policyToken(t)
	s, err := v.client(t).Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"tributary-audit"}, TTL: "2s", ExplicitMaxTTL: "1m", Renewable: boolPtr(true)})
	if err != nil {
		t.Fatal(err)
	}
	k := vaultKeys(t, v, s.Auth.ClientToken)
	time.Sleep(4 * time.Second)
	if _, err := k.NewDataKey(context.Background(), "acme"); err != nil {
		t.Fatalf("NewDataKey after the token's first TTL: %v", err)
	}
}
