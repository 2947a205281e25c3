//go:build containers

package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/segmentio/kafka-go"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/tributary-rag/tributary/pkg/containertest"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/eventually"
)

// vaultImage builds the FROM scratch Vault image (tools/vault/Dockerfile)
// once per binary, tagged by the binary's cache directory.
func vaultImage(ctx context.Context, t *testing.T, root string) string {
	t.Helper()
	bin := vaultBinary(t)
	tag := "tributary-vault:" + filepath.Base(filepath.Dir(bin))
	if exec.CommandContext(ctx, "docker", "image", "inspect", tag).Run() == nil {
		return tag
	}
	bctx := t.TempDir()
	if err := os.Mkdir(filepath.Join(bctx, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(bin, filepath.Join(bctx, "vault")); err != nil {
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bctx, "vault"), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf, err := os.ReadFile(filepath.Join(root, "tools", "vault", "config.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bctx, "config.hcl"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, "docker", "build", "-q", "-f", filepath.Join(root, "tools", "vault", "Dockerfile"), "-t", tag, bctx).CombinedOutput()
	if err != nil {
		t.Fatalf("build vault image: %v\n%s", err, out)
	}
	return tag
}

// TestContainerAuditVault runs the audit image against the Vault image (file
// storage, initialised and unsealed) and a broker image on one network,
// with a token of deploy/vault/audit-policy.hcl in VAULT_TOKEN: records of
// two tenants are exported decrypted; a rotation goes through the API;
// Vault is stopped while a new tenant's events arrive (audit turns
// not-ready, commits nothing) and started again (audit catches up, loses
// nothing); a shred leaves the other tenant's export intact and reports
// the shredded tenant's records in the trailer.
func TestContainerAuditVault(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	env := containertest.Setup(ctx, t, containertest.BinaryTributary)
	env.AddImage(ctx, t, "audit", containertest.Target{Package: "./services/audit/cmd/audit", Dockerfile: "services/audit/Dockerfile"})
	image := vaultImage(ctx, t, env.Root)
	broker := env.StartBroker(ctx, t)

	vc, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image: image, Cmd: []string{"server", "-config=/vault/config.hcl"},
			ExposedPorts: []string{"8200/tcp"}, Networks: []string{env.Network},
			NetworkAliases: map[string][]string{env.Network: {"vault"}},
			WaitingFor: wait.ForHTTP("/v1/sys/health?uninitcode=200&sealedcode=200").WithPort("8200/tcp").
				WithStartupTimeout(60 * time.Second),
		},
		Started: true,
	})
	testcontainers.CleanupContainer(t, vc)
	if err != nil {
		t.Fatalf("start vault: %v", err)
	}
	hostVault := func() *vault.Client {
		u, err := vc.PortEndpoint(ctx, "8200/tcp", "http")
		if err != nil {
			t.Fatal(err)
		}
		cfg := vault.DefaultConfig()
		cfg.Address = u
		c, err := vault.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := hostVault()
	init, err := c.Sys().InitWithContext(ctx, &vault.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatalf("vault init: %v", err)
	}
	unseal := func(c *vault.Client) {
		if _, err := c.Sys().UnsealWithContext(ctx, init.KeysB64[0]); err != nil {
			t.Fatalf("unseal: %v", err)
		}
	}
	unseal(c)
	c.SetToken(init.RootToken)
	if err := c.Sys().MountWithContext(ctx, "transit", &vault.MountInput{Type: "transit"}); err != nil {
		t.Fatalf("mount transit: %v", err)
	}
	policy, err := os.ReadFile(filepath.Join(env.Root, "deploy", "vault", "audit-policy.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().PutPolicyWithContext(ctx, "tributary-audit", string(policy)); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Auth().Token().CreateWithContext(ctx, &vault.TokenCreateRequest{Policies: []string{"tributary-audit"}, TTL: "1h", Renewable: boolPtr(true)})
	if err != nil {
		t.Fatal(err)
	}

	const (
		officerKey = "k-officer-v1"
		globexKey  = "k-globex-v1"
		adminKey   = "k-admin-v1"
	)
	svc := env.StartService(ctx, t, containertest.Service{
		Binary: "audit",
		Env: map[string]string{
			"TRIBUTARY_KAFKA_BROKERS": broker.Addr,
			"TRIBUTARY_API_KEYS": officerKey + ":acme:" + GroupCompliance + "," + globexKey + ":globex:" + GroupCompliance +
				"," + adminKey + ":bank:" + GroupCompliance + "|" + GroupComplianceAdmin,
			"VAULT_ADDR":  "http://vault:8200",
			"VAULT_TOKEN": tok.Auth.ClientToken,
		},
	})
	defer func() {
		if t.Failed() {
			t.Logf("audit output:\n%s", containertest.Logs(ctx, svc.Container))
		}
	}()
	topics := events.NewTopics("")
	w := &kafka.Writer{Addr: kafka.TCP(broker.Addr), Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond, Transport: &kafka.Transport{Dial: broker.Dialer()}}
	defer w.Close()
	produce := func(tenant string, from, n int) {
		var msgs []kafka.Message
		for i := from; i < from+n; i++ {
			msgs = append(msgs, eventMsg(topics.QueriesReceived, events.TypeQueryReceived, tenant, fmt.Sprintf("req-%s%d", tenant, i), i))
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	count := func(key, query string) (int, string) {
		status, body, trailer := exportTrailer(ctx, t, svc.URL, key, query)
		if status != http.StatusOK {
			return -1, ""
		}
		n := 0
		for _, r := range parseNDJSON(t, body) {
			if r.Type == events.TypeQueryReceived {
				n++
			}
		}
		return n, trailer
	}
	waitCount := func(key, query string, want int) string {
		var trailer string
		eventually.NoError(t, fmt.Sprintf("%d query records for %s%s", want, key, query), 90*time.Second, func() error {
			n, tr := count(key, query)
			trailer = tr
			if n != want {
				return fmt.Errorf("%d records", n)
			}
			return nil
		})
		return trailer
	}
	produce("acme", 0, 5)
	produce("globex", 0, 3)
	waitCount(officerKey, "", 5)
	waitCount(globexKey, "", 3)

	post := func(key, path string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, svc.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := post(officerKey, "/v1/audit/keys/rotate"); st != http.StatusForbidden {
		t.Errorf("rotate by an officer: %d %s", st, body)
	}
	if st, body := post(adminKey, "/v1/audit/keys/rotate"); st != http.StatusOK || !strings.Contains(body, "tributary-audit-t-acme") {
		t.Errorf("rotate: %d %s", st, body)
	}

	// Outage: Vault stops while a new tenant's events arrive.
	stop := 10 * time.Second
	if err := vc.Stop(ctx, &stop); err != nil {
		t.Fatalf("stop vault: %v", err)
	}
	produce("initech", 0, 4)
	eventually.NoError(t, "audit not ready while Vault is away", 60*time.Second, func() error {
		resp, err := http.Get(svc.URL + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return fmt.Errorf("readyz 200")
		}
		return nil
	})
	if err := vc.Start(ctx); err != nil {
		t.Fatalf("start vault: %v", err)
	}
	unseal(hostVault())
	waitCount(adminKey, "?tenant=initech", 4)
	eventually.NoError(t, "audit ready again", 60*time.Second, func() error {
		resp, err := http.Get(svc.URL + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})

	// Shred acme: its export reports the records as shredded, globex's is
	// unchanged, and the shred itself is an admin_action record.
	if st, body := post(adminKey, "/v1/audit/keys/shred?tenant=acme"); st != http.StatusOK {
		t.Fatalf("shred: %d %s", st, body)
	}
	trailer := waitCount(officerKey, "", 0)
	var shredded []ShredRange
	// acme's five queries, and the audit events of acme's officer (its
	// exports, its refused rotation) recorded under acme's key before.
	if err := json.Unmarshal([]byte(trailer), &shredded); err != nil || len(shredded) != 1 || shredded[0].Tenant != "acme" || shredded[0].Records < 5 {
		t.Errorf("acme's trailer %s = %q, want at least 5 shredded records", TrailerShredded, trailer)
	}
	waitCount(globexKey, "", 3)
	eventually.NoError(t, "the shred recorded as an admin action", 60*time.Second, func() error {
		_, body, _ := exportTrailer(ctx, t, svc.URL, adminKey, "?tenant=bank&type=tributary.audit.admin_action")
		if !strings.Contains(string(body), `"action":"audit.shred"`) {
			return fmt.Errorf("no audit.shred action yet")
		}
		return nil
	})
	if st, body := post(adminKey, "/v1/audit/keys/rewrap?raise_min_decryption=true"); st != http.StatusOK {
		t.Errorf("rewrap: %d %s", st, body)
	}
	waitCount(globexKey, "", 3)
}

// exportTrailer is export that also returns the shredded trailer.
func exportTrailer(ctx context.Context, t *testing.T, base, key, query string) (int, []byte, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/audit/export"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error()), ""
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, []byte(err.Error()), ""
	}
	return resp.StatusCode, body, resp.Trailer.Get(TrailerShredded)
}
