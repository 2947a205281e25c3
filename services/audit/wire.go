package audit

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/tributary-rag/tributary/pkg/apikey"
	"github.com/tributary-rag/tributary/pkg/auditevent"
	"github.com/tributary-rag/tributary/pkg/daemon"
)

// Settings are the audit service's own settings, next to the shared
// daemon.Config. Its main and tributary dev both register them (Register),
// check them (Check) and wire the service with them (Wire).
type Settings struct {
	// KeyFile holds the key-encryption keys (empty: <data dir>/audit.key,
	// created 0600 if missing); used when VaultAddr is empty, and with
	// Vault, when present, to read the format-1 segments it protects.
	KeyFile string
	// SegmentBytes is the size at which a segment is sealed.
	SegmentBytes int64
	// MaxBatch is the most messages recorded with one fsync.
	MaxBatch int
	// RecordDeltas records per-token answer.delta events; RecordTexts
	// keeps chunk and document texts (see RecordPolicy).
	RecordDeltas, RecordTexts bool
	// Vault, when Vault.Addr is set, replaces the key file with Vault's
	// transit engine (one key per tenant).
	Vault VaultConfig
	// RotateEvery rotates every tenant's transit key on this schedule (0:
	// only on request, `tributary audit rotate`).
	RotateEvery time.Duration
}

// DefaultSettings returns the defaults of every setting.
func DefaultSettings() Settings {
	return Settings{SegmentBytes: DefaultSegmentSize, MaxBatch: 512, Vault: VaultConfig{Auth: VaultAuthToken, Mount: "transit", KeyPrefix: "tributary-audit", Timeout: 10 * time.Second}}
}

// WithVaultEnv returns s with the Vault settings taken from Vault's own
// environment variables (VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE,
// VAULT_CACERT, VAULT_ROLE_ID, VAULT_SECRET_ID), as Vault's CLI reads them;
// the flags and their TRIBUTARY_ variables still override them.
func (s Settings) WithVaultEnv(getenv func(string) string) Settings {
	set := func(dst *string, name string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	set(&s.Vault.Addr, "VAULT_ADDR")
	set(&s.Vault.Token, "VAULT_TOKEN")
	set(&s.Vault.Namespace, "VAULT_NAMESPACE")
	set(&s.Vault.CACert, "VAULT_CACERT")
	set(&s.Vault.RoleID, "VAULT_ROLE_ID")
	set(&s.Vault.SecretID, "VAULT_SECRET_ID")
	return s
}

// Register registers a flag for every setting on fs, with s's values as
// the defaults.
func (s *Settings) Register(fs *flag.FlagSet) {
	fs.StringVar(&s.KeyFile, "audit-key-file", s.KeyFile, "key file of the key-encryption keys when Vault is not used (default <data-dir>/audit.key; created 0600 if missing); with Vault, read if present for the segments of earlier releases")
	fs.Int64Var(&s.SegmentBytes, "audit-segment-bytes", s.SegmentBytes, "size at which a segment is sealed and the next started")
	fs.IntVar(&s.MaxBatch, "audit-max-batch", s.MaxBatch, "most messages recorded with one fsync")
	fs.BoolVar(&s.RecordDeltas, "audit-record-deltas", s.RecordDeltas, "also record per-token answer.delta events (answer.completed holds the whole answer)")
	fs.BoolVar(&s.RecordTexts, "audit-record-texts", s.RecordTexts, "keep chunk and document texts in records (default: size and SHA-256 only)")
	fs.DurationVar(&s.RotateEvery, "audit-rotate-every", s.RotateEvery, "rotate every tenant's transit key this often (0: only with tributary audit rotate)")
	s.Vault.Register(fs)
}

// Register registers the --vault-* flags on fs with c's values as the
// defaults (the service and `tributary audit verify` share them).
func (c *VaultConfig) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "vault-addr", c.Addr, "Vault address; switches audit keys from the key file to Vault transit (also VAULT_ADDR)")
	fs.StringVar(&c.Token, "vault-token", c.Token, "Vault token for --vault-auth=token (also VAULT_TOKEN)")
	fs.StringVar(&c.Namespace, "vault-namespace", c.Namespace, "Vault Enterprise namespace (also VAULT_NAMESPACE)")
	fs.StringVar(&c.CACert, "vault-cacert", c.CACert, "PEM file of the CA of Vault's TLS certificate (also VAULT_CACERT)")
	fs.StringVar(&c.Auth, "vault-auth", c.Auth, "Vault auth method: token, approle or kubernetes")
	fs.StringVar(&c.AuthMount, "vault-auth-mount", c.AuthMount, "mount path of the auth method (default: its name)")
	fs.StringVar(&c.RoleID, "vault-role-id", c.RoleID, "AppRole role id (also VAULT_ROLE_ID)")
	fs.StringVar(&c.SecretID, "vault-secret-id", c.SecretID, "AppRole secret id (also VAULT_SECRET_ID; prefer --vault-secret-id-file)")
	fs.StringVar(&c.SecretIDFile, "vault-secret-id-file", c.SecretIDFile, "file holding the AppRole secret id")
	fs.StringVar(&c.K8sRole, "vault-k8s-role", c.K8sRole, "Vault role of the Kubernetes auth method")
	fs.StringVar(&c.K8sTokenPath, "vault-k8s-token-path", c.K8sTokenPath, "service-account token file for Kubernetes auth (default the pod's)")
	fs.StringVar(&c.Mount, "vault-transit-mount", c.Mount, "mount path of the transit engine")
	fs.StringVar(&c.KeyPrefix, "vault-key-prefix", c.KeyPrefix, "prefix of every tenant's transit key name")
	fs.DurationVar(&c.Timeout, "vault-timeout", c.Timeout, "bound on one Vault request; a slower Vault counts as unavailable")
}

// Check records in p each setting out of range.
func (s Settings) Check(p *daemon.Problems) {
	if s.SegmentBytes < 4096 {
		p.Addf("audit-segment-bytes", "must be at least 4096")
	}
	if s.MaxBatch <= 0 {
		p.Addf("audit-max-batch", "must be positive")
	}
	if s.RotateEvery < 0 || (s.RotateEvery > 0 && s.RotateEvery < time.Minute) {
		p.Addf("audit-rotate-every", "must be 0 or at least 1m")
	}
	if s.RotateEvery > 0 && s.Vault.Addr == "" {
		p.Addf("audit-rotate-every", "needs Vault (--vault-addr)")
	}
	if s.Vault.Addr == "" {
		return
	}
	if u, err := url.Parse(s.Vault.Addr); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.Addf("vault-addr", "want an http:// or https:// URL")
	}
	switch s.Vault.Auth {
	case VaultAuthToken:
		if s.Vault.Token == "" {
			p.Addf("vault-token", "needed for --vault-auth=token (or set VAULT_TOKEN)")
		}
	case VaultAuthAppRole:
		if s.Vault.RoleID == "" || (s.Vault.SecretID == "" && s.Vault.SecretIDFile == "") {
			p.Addf("vault-role-id", "approle needs a role id and a secret id (or --vault-secret-id-file)")
		}
	case VaultAuthKubernetes:
		if s.Vault.K8sRole == "" {
			p.Addf("vault-k8s-role", "needed for --vault-auth=kubernetes")
		}
	default:
		p.Addf("vault-auth", "want token, approle or kubernetes")
	}
	if s.Vault.Timeout <= 0 {
		p.Addf("vault-timeout", "must be positive")
	}
}

// Keys returns the key provider s selects: Vault transit when
// Vault.Addr is set, else the key file (default <dataDir>/audit.key).
// The closer ends the Vault token watcher.
func (s Settings) Keys(ctx context.Context, dataDir string, logger *slog.Logger) (KeyProvider, func() error, string, error) {
	if s.Vault.Addr != "" {
		cfg := s.Vault
		cfg.Logger = logger
		vk, err := NewVaultKeys(ctx, cfg)
		if err != nil {
			return nil, nil, "", err
		}
		return vk, vk.Close, "vault:" + cfg.Mount + "/" + cfg.KeyPrefix + "-*", nil
	}
	if s.KeyFile == "" {
		s.KeyFile = filepath.Join(dataDir, "audit.key")
	}
	keys, err := LoadKeyFile(s.KeyFile)
	if err != nil {
		return nil, nil, "", err
	}
	return keys, func() error { return nil }, keys.CurrentKeyID(), nil
}

// withFormat1KeyFile adds the key file, when there is one, to Vault's
// keys for the log: the format-1 segments of a deployment that moved to
// Vault when it upgraded are protected by it. It creates no key file.
func (s Settings) withFormat1KeyFile(keys KeyProvider, dataDir string) (KeyProvider, error) {
	if s.Vault.Addr == "" {
		return keys, nil // keys is the key file
	}
	path := s.KeyFile
	if path == "" {
		path = filepath.Join(dataDir, "audit.key")
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if s.KeyFile != "" {
			return nil, fmt.Errorf("key file %s does not exist", path)
		}
		return keys, nil
	}
	fk, err := LoadKeyFile(path)
	if err != nil {
		return nil, err
	}
	return WithFormat1Keys(keys, fk), nil
}

// Wire opens the audit log in d.DataDir and adds the service, its export
// and key APIs under /v1/audit/ and its consumer of every topic to w.
func (s Settings) Wire(ctx context.Context, w *daemon.Wiring, d daemon.Deps) error {
	keys, closeKeys, keyDesc, err := s.Keys(ctx, d.DataDir, d.Logger)
	if err != nil {
		return err
	}
	w.OnClose(closeKeys)
	logKeys, err := s.withFormat1KeyFile(keys, d.DataDir)
	if err != nil {
		return err
	}
	log, err := Open(ctx, d.DataDir, logKeys, WithSegmentSize(s.SegmentBytes), WithLogger(d.Logger),
		WithRecordPolicy(RecordPolicy{Deltas: s.RecordDeltas, Texts: s.RecordTexts}))
	if err != nil {
		return err
	}
	w.OnClose(log.Close)
	metrics, err := NewMetrics(d.Registry)
	if err != nil {
		return fmt.Errorf("audit metrics: %w", err)
	}
	actions := auditevent.New(d.Publisher(w, "tributary/audit"), d.Topics.AuditEvents, "tributary/audit", d.Logger)
	var svc Service
	svc = NewService(log, keys, actions)
	svc = LoggingMiddleware(d.Logger)(svc)
	svc = InstrumentingMiddleware(metrics)(svc)
	endpoints := MakeEndpoints(svc)

	auth := AuthenticatorFunc(func(key string) (Principal, bool) {
		p, ok := d.Keys.Lookup(key)
		return principal(p), ok
	})
	w.Handle("/v1/audit/", MakeHTTPHandler(endpoints, auth, d.Logger, actions))
	// Exports stream for as long as the log is: the server sets no
	// WriteTimeout, and shutdown waits longer for them.
	w.Drain(30 * time.Second)
	topics := Topics(d.Topics.Prefix)
	consumer := NewConsumer(ConsumerConfig{Brokers: d.Brokers, Topics: topics, MaxBatch: s.MaxBatch, Reader: d.KafkaSecurity.ReaderConfig, TracerProvider: d.TracerProvider}, endpoints.Record, d.Logger)
	w.Group.Add("audit-consumer", consumer.Run)
	w.Check(daemon.Check{Name: "audit-keys", Run: consumer.Ready})
	if vk, ok := keys.(*VaultKeys); ok {
		w.Check(daemon.Check{Name: "vault", Run: vk.Ping})
		if s.RotateEvery > 0 {
			w.Group.Add("audit-rotate", rotateEvery(s.RotateEvery, svc, d.Logger))
		}
	}
	w.Topics(topics, d.Topics.AuditEvents)
	lastSeq, segments := log.Stats()
	w.Describe("data_dir", d.DataDir, "keys", keyDesc, "last_seq", lastSeq, "segments", segments, "api_keys", d.Keys.Len())
	return nil
}

// rotateEvery rotates the transit keys on a schedule, as the service
// itself (an admin action recorded like any other).
func rotateEvery(every time.Duration, svc Service, logger *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		t := time.NewTicker(every)
		defer t.Stop()
		system := Principal{Name: "audit-rotation-schedule", Groups: []string{GroupCompliance, GroupComplianceAdmin}}
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				if _, err := svc.Admin(ctx, system, AdminRequest{Action: ActionRotate}); err != nil {
					logger.Error("scheduled key rotation", "error", err.Error())
				}
			}
		}
	}
}

func principal(p apikey.Principal) Principal {
	return Principal{Tenant: p.Tenant, Groups: p.Groups, Name: p.Name}
}
