package audit

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"
)

// Vault authentication methods.
const (
	VaultAuthToken      = "token"
	VaultAuthAppRole    = "approle"
	VaultAuthKubernetes = "kubernetes"
)

// VaultConfig says how to reach Vault's transit engine and log in.
type VaultConfig struct {
	// Addr is Vault's URL (VAULT_ADDR).
	Addr string
	// Token is the token of the token auth method (VAULT_TOKEN).
	Token string
	// Namespace is the Vault Enterprise namespace (VAULT_NAMESPACE).
	Namespace string
	// CACert is a PEM file of the CA that signed Vault's TLS certificate
	// (VAULT_CACERT).
	CACert string
	// Auth is VaultAuthToken (default), VaultAuthAppRole or
	// VaultAuthKubernetes.
	Auth string
	// AuthMount is the auth method's mount path (default: the method's name).
	AuthMount string
	// RoleID and SecretID log in with AppRole; SecretIDFile, when set,
	// is read instead of SecretID (a file an operator rotates).
	RoleID, SecretID, SecretIDFile string
	// K8sRole and K8sTokenPath log in with the Kubernetes method (default
	// token path: the pod's service-account token).
	K8sRole, K8sTokenPath string
	// Mount is the transit engine's mount path (default "transit").
	Mount string
	// KeyPrefix starts every tenant's transit key name (default
	// "tributary-audit").
	KeyPrefix string
	// Timeout bounds one Vault request (default 10s): a Vault that hangs
	// is an outage, not a stall.
	Timeout time.Duration
	// Logger logs renewals and logins (default: discard).
	Logger *slog.Logger
}

// VaultKeys is a KeyProvider on Vault's transit engine: one transit key
// per tenant, named KeyPrefix + "-" + a slug of the tenant (KeyName). A
// data key comes from transit/datakey/plaintext (the plaintext lives only
// in this process's memory; the wrapped form goes to the segment's key
// file) and is unwrapped with transit/decrypt. It also rotates, rewraps
// and shreds (KeyAdmin). Safe for concurrent use.
type VaultKeys struct {
	cfg    VaultConfig
	client *vault.Client
	logger *slog.Logger

	loginMu sync.Mutex // serialises re-logins
	stop    chan struct{}
	done    sync.WaitGroup
}

// NewVaultKeys connects to Vault, logs in with cfg.Auth and checks the
// token (a wrong token or role fails here, with Vault's message). For a
// renewable login it starts the lifetime watcher, which renews the token
// and logs in again when it can no longer be renewed; Close stops it.
func NewVaultKeys(ctx context.Context, cfg VaultConfig) (*VaultKeys, error) {
	if cfg.Addr == "" {
		return nil, errors.New("vault: no address")
	}
	if cfg.Auth == "" {
		cfg.Auth = VaultAuthToken
	}
	if cfg.Mount == "" {
		cfg.Mount = "transit"
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "tributary-audit"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.K8sTokenPath == "" {
		cfg.K8sTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	vc := vault.DefaultConfig()
	if vc.Error != nil {
		return nil, fmt.Errorf("vault: %w", vc.Error)
	}
	vc.Address = cfg.Addr
	vc.Timeout = cfg.Timeout
	// Retries are ours (the consumer backs off without committing), so a
	// call fails fast and readiness says so.
	vc.MaxRetries = 0
	if cfg.CACert != "" {
		if err := vc.ConfigureTLS(&vault.TLSConfig{CACert: cfg.CACert}); err != nil {
			return nil, fmt.Errorf("vault: ca cert %s: %w", cfg.CACert, err)
		}
	}
	client, err := vault.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	// NewClient reads VAULT_TOKEN itself; only the configured token counts.
	client.ClearToken()
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	}
	k := &VaultKeys{cfg: cfg, client: client, logger: cfg.Logger, stop: make(chan struct{})}
	secret, err := k.login(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := client.Auth().Token().LookupSelfWithContext(ctx); err != nil {
		return nil, fmt.Errorf("vault: token lookup: %w", describe(err))
	}
	if secret != nil && secret.Auth != nil && secret.Auth.Renewable {
		k.watch(secret)
	}
	return k, nil
}

// login authenticates with the configured method; for the token method it
// returns the token's own lookup as the secret to renew.
func (k *VaultKeys) login(ctx context.Context) (*vault.Secret, error) {
	switch k.cfg.Auth {
	case VaultAuthToken:
		if k.cfg.Token == "" {
			return nil, errors.New("vault: token auth without a token (set VAULT_TOKEN)")
		}
		k.client.SetToken(k.cfg.Token)
		s, err := k.client.Auth().Token().LookupSelfWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("vault: token: %w", describe(err))
		}
		renewable, _ := s.TokenIsRenewable()
		ttl, _ := s.TokenTTL()
		if !renewable || ttl == 0 {
			return nil, nil
		}
		return &vault.Secret{Auth: &vault.SecretAuth{ClientToken: k.cfg.Token, Renewable: true, LeaseDuration: int(ttl.Seconds())}}, nil
	case VaultAuthAppRole:
		sid := &approle.SecretID{FromString: k.cfg.SecretID}
		if k.cfg.SecretIDFile != "" {
			sid = &approle.SecretID{FromFile: k.cfg.SecretIDFile}
		}
		var opts []approle.LoginOption
		if k.cfg.AuthMount != "" {
			opts = append(opts, approle.WithMountPath(k.cfg.AuthMount))
		}
		a, err := approle.NewAppRoleAuth(k.cfg.RoleID, sid, opts...)
		if err != nil {
			return nil, fmt.Errorf("vault: approle: %w", err)
		}
		s, err := k.client.Auth().Login(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("vault: approle login: %w", describe(err))
		}
		return s, nil
	case VaultAuthKubernetes:
		opts := []kubernetes.LoginOption{kubernetes.WithServiceAccountTokenPath(k.cfg.K8sTokenPath)}
		if k.cfg.AuthMount != "" {
			opts = append(opts, kubernetes.WithMountPath(k.cfg.AuthMount))
		}
		a, err := kubernetes.NewKubernetesAuth(k.cfg.K8sRole, opts...)
		if err != nil {
			return nil, fmt.Errorf("vault: kubernetes auth: %w", err)
		}
		s, err := k.client.Auth().Login(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("vault: kubernetes login: %w", describe(err))
		}
		return s, nil
	default:
		return nil, fmt.Errorf("vault: unknown auth method %q (want token, approle or kubernetes)", k.cfg.Auth)
	}
}

// watch renews the login's token until it cannot be renewed any more,
// then logs in again (AppRole, Kubernetes) and watches the new token.
func (k *VaultKeys) watch(secret *vault.Secret) {
	k.done.Add(1)
	go func() {
		defer k.done.Done()
		for {
			w, err := k.client.NewLifetimeWatcher(&vault.LifetimeWatcherInput{Secret: secret})
			if err != nil {
				k.logger.Error("vault: lifetime watcher", "error", err.Error())
				return
			}
			go w.Start()
			var doneErr error
		loop:
			for {
				select {
				case <-k.stop:
					w.Stop()
					return
				case r := <-w.RenewCh():
					k.logger.Debug("vault: token renewed", "at", r.RenewedAt)
				case doneErr = <-w.DoneCh():
					break loop
				}
			}
			w.Stop()
			if k.cfg.Auth == VaultAuthToken {
				k.logger.Warn("vault: token can no longer be renewed", "error", fmt.Sprint(doneErr))
				return
			}
			for attempt := 0; ; attempt++ {
				ctx, cancel := context.WithTimeout(context.Background(), k.cfg.Timeout)
				k.loginMu.Lock()
				s, err := k.login(ctx)
				k.loginMu.Unlock()
				cancel()
				if err == nil && s != nil {
					k.logger.Info("vault: logged in again", "method", k.cfg.Auth)
					secret = s
					break
				}
				k.logger.Error("vault: login", "error", fmt.Sprint(err))
				select {
				case <-k.stop:
					return
				case <-time.After(backoff(attempt)):
				}
			}
		}
	}()
}

// Close stops the token's lifetime watcher.
func (k *VaultKeys) Close() error {
	select {
	case <-k.stop:
	default:
		close(k.stop)
	}
	k.done.Wait()
	return nil
}

var tenantSlugRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// KeyName returns the transit key of tenant: the tenant itself when it is
// a plain name, else "h-" and a hash of it, so any tenant string maps to
// a valid, distinct key name; the empty tenant (events without one) uses
// "system".
func (k *VaultKeys) KeyName(tenant string) string {
	switch {
	case tenant == "":
		return k.cfg.KeyPrefix + "-system"
	case tenantSlugRE.MatchString(tenant):
		return k.cfg.KeyPrefix + "-t-" + tenant
	default:
		return k.cfg.KeyPrefix + "-h-" + shortHash(tenant)
	}
}

// NewDataKey returns a fresh 256-bit data key for tenant from
// transit/datakey/plaintext (it returns the key and its wrapped form in
// one call; the "wrapped" variant would need a second call to decrypt it),
// creating the tenant's transit key when it has none yet.
func (k *VaultKeys) NewDataKey(ctx context.Context, tenant string) (DataKey, error) {
	name := k.KeyName(tenant)
	s, err := k.write(ctx, k.cfg.Mount+"/datakey/plaintext/"+name, map[string]any{"bits": 256})
	if isKeyNotFound(err) {
		if _, err = k.write(ctx, k.cfg.Mount+"/keys/"+name, map[string]any{"type": "aes256-gcm96"}); err == nil {
			s, err = k.write(ctx, k.cfg.Mount+"/datakey/plaintext/"+name, map[string]any{"bits": 256})
		}
	}
	if err != nil {
		return DataKey{}, k.classify("data key for tenant key "+name, err)
	}
	pt, _ := s.Data["plaintext"].(string)
	ct, _ := s.Data["ciphertext"].(string)
	key, err := base64.StdEncoding.DecodeString(pt)
	if err != nil || len(key) != DataKeySize || ct == "" {
		return DataKey{}, fmt.Errorf("vault: data key for %s: malformed answer", name)
	}
	return DataKey{KeyID: name, Key: key, Wrapped: []byte(ct)}, nil
}

// UnwrapKey decrypts a wrapped data key with transit/decrypt. A key that
// Vault no longer has, or whose version that wrapped it was trimmed away
// (Shred), gives ErrKeyDestroyed; a ciphertext Vault refuses gives
// ErrUnwrap (tampered); an unreachable or failing Vault gives
// ErrKeysUnavailable.
func (k *VaultKeys) UnwrapKey(ctx context.Context, ref KeyRef) ([]byte, error) {
	s, err := k.write(ctx, k.cfg.Mount+"/decrypt/"+ref.KeyID, map[string]any{"ciphertext": string(ref.Wrapped)})
	if err != nil {
		return nil, k.refused(ctx, "unwrap with", ref, err)
	}
	pt, _ := s.Data["plaintext"].(string)
	key, err := base64.StdEncoding.DecodeString(pt)
	if err != nil || len(key) != DataKeySize {
		return nil, fmt.Errorf("%w: transit key %s: not a %d-byte data key", ErrUnwrap, ref.KeyID, DataKeySize)
	}
	return key, nil
}

// refused explains why Vault refused to decrypt or rewrap ref: the key or
// the key version is gone (ErrKeyDestroyed), the version may no longer
// decrypt (min_decryption_version raised before a rewrap), or the wrapped
// key was changed (ErrUnwrap).
func (k *VaultKeys) refused(ctx context.Context, what string, ref KeyRef, err error) error {
	if isKeyNotFound(err) {
		return fmt.Errorf("%w: transit key %s does not exist", ErrKeyDestroyed, ref.KeyID)
	}
	var re *vault.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
		return k.classify(what+" "+ref.KeyID, err)
	}
	ver := wrappedVersion(ref.Wrapped)
	st, serr := k.keyState(ctx, ref.KeyID)
	switch {
	case serr != nil && isNotFound(serr):
		return fmt.Errorf("%w: transit key %s does not exist", ErrKeyDestroyed, ref.KeyID)
	case serr != nil:
		return k.classify("read "+ref.KeyID, serr)
	case ver > 0 && ver < st.minAvailable:
		return fmt.Errorf("%w: version %d of transit key %s was destroyed (versions before %d trimmed)", ErrKeyDestroyed, ver, ref.KeyID, st.minAvailable)
	case ver > 0 && ver <= st.latest && ver < st.minDecryption:
		return fmt.Errorf("vault: data key wrapped with version %d of %s, below its min_decryption_version %d: rewrap before raising it", ver, ref.KeyID, st.minDecryption)
	}
	return fmt.Errorf("%w: transit key %s: %s", ErrUnwrap, ref.KeyID, strings.Join(re.Errors, "; "))
}

// wrappedVersion returns N of a "vault:vN:..." ciphertext, 0 if none.
func wrappedVersion(w []byte) int {
	rest, ok := strings.CutPrefix(string(w), "vault:v")
	if !ok {
		return 0
	}
	n, _, _ := strings.Cut(rest, ":")
	v, err := strconv.Atoi(n)
	if err != nil || v < 0 {
		return 0
	}
	return v
}

type keyState struct{ latest, minDecryption, minAvailable int }

func (k *VaultKeys) keyState(ctx context.Context, name string) (keyState, error) {
	s, err := k.read(ctx, k.cfg.Mount+"/keys/"+name)
	if err != nil {
		return keyState{}, err
	}
	num := func(key string) int {
		n, _ := s.Data[key].(json.Number)
		v, _ := strconv.Atoi(n.String())
		return v
	}
	st := keyState{latest: num("latest_version"), minDecryption: num("min_decryption_version"), minAvailable: num("min_available_version")}
	st.minAvailable = max(st.minAvailable, 1)
	if st.latest < 1 {
		return st, fmt.Errorf("vault: key %s: no latest_version", name)
	}
	return st, nil
}

// Keys lists the transit keys under KeyPrefix.
func (k *VaultKeys) Keys(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	s, err := k.client.Logical().ListWithContext(ctx, k.cfg.Mount+"/keys")
	if err != nil {
		return nil, k.classify("list keys", err)
	}
	var out []string
	if s != nil {
		list, _ := s.Data["keys"].([]any)
		for _, v := range list {
			if name, _ := v.(string); strings.HasPrefix(name, k.cfg.KeyPrefix+"-") {
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// Rotate adds a new version to every tenant key; data keys made from now
// on are wrapped with it. It returns the keys rotated.
func (k *VaultKeys) Rotate(ctx context.Context) ([]string, error) {
	names, err := k.Keys(ctx)
	if err != nil {
		return nil, err
	}
	for i, n := range names {
		if _, err := k.write(ctx, k.cfg.Mount+"/keys/"+n+"/rotate", nil); err != nil {
			return names[:i], k.classify("rotate "+n, err)
		}
	}
	return names, nil
}

// Rewrap rewraps a wrapped data key to the latest version of its transit
// key; the data key itself, and so every record's ciphertext, stays.
func (k *VaultKeys) Rewrap(ctx context.Context, ref KeyRef) (KeyRef, error) {
	s, err := k.write(ctx, k.cfg.Mount+"/rewrap/"+ref.KeyID, map[string]any{"ciphertext": string(ref.Wrapped)})
	if err != nil {
		return ref, k.refused(ctx, "rewrap with", ref, err)
	}
	ct, _ := s.Data["ciphertext"].(string)
	if ct == "" {
		return ref, fmt.Errorf("vault: rewrap with %s: malformed answer", ref.KeyID)
	}
	return KeyRef{KeyID: ref.KeyID, Wrapped: []byte(ct)}, nil
}

// RaiseMinDecryption sets each tenant key's min_decryption_version to its
// latest version, so wrapped keys of older versions no longer decrypt; run
// it after Rewrap. It returns the keys changed.
func (k *VaultKeys) RaiseMinDecryption(ctx context.Context) ([]string, error) {
	names, err := k.Keys(ctx)
	if err != nil {
		return nil, err
	}
	for i, n := range names {
		st, err := k.keyState(ctx, n)
		if err != nil {
			return names[:i], k.classify("read "+n, err)
		}
		if _, err := k.write(ctx, k.cfg.Mount+"/keys/"+n+"/config", map[string]any{"min_decryption_version": st.latest}); err != nil {
			return names[:i], k.classify("configure "+n, err)
		}
	}
	return names, nil
}

// Shred destroys every version of tenant's transit key that wrapped a
// data key so far: it rotates the key, raises min_decryption_version to
// the new version and trims (permanently deletes) every older version.
// Every record of the tenant written before can no longer be decrypted by
// anyone; the key itself lives on with the new version for the tenant's
// later records, and the trimmed versions tell a shredded data key from a
// tampered one without any clock.
func (k *VaultKeys) Shred(ctx context.Context, tenant string) error {
	name := k.KeyName(tenant)
	if _, err := k.keyState(ctx, name); err != nil {
		if isNotFound(err) {
			return fmt.Errorf("%w: tenant %q has no transit key %s", ErrKeyDestroyed, tenant, name)
		}
		return k.classify("read "+name, err)
	}
	if _, err := k.write(ctx, k.cfg.Mount+"/keys/"+name+"/rotate", nil); err != nil {
		return k.classify("rotate "+name, err)
	}
	st, err := k.keyState(ctx, name)
	if err != nil {
		return k.classify("read "+name, err)
	}
	if _, err := k.write(ctx, k.cfg.Mount+"/keys/"+name+"/config", map[string]any{"min_decryption_version": st.latest, "min_encryption_version": st.latest}); err != nil {
		return k.classify("configure "+name, err)
	}
	if _, err := k.write(ctx, k.cfg.Mount+"/keys/"+name+"/trim", map[string]any{"min_available_version": st.latest}); err != nil {
		return k.classify("trim "+name, err)
	}
	return nil
}

// Encrypt encrypts plaintext with tenant's transit key in Vault (one
// request); the benchmark compares it with envelope encryption.
func (k *VaultKeys) Encrypt(ctx context.Context, tenant string, plaintext []byte) (string, error) {
	s, err := k.write(ctx, k.cfg.Mount+"/encrypt/"+k.KeyName(tenant), map[string]any{"plaintext": base64.StdEncoding.EncodeToString(plaintext)})
	if err != nil {
		return "", k.classify("encrypt", err)
	}
	ct, _ := s.Data["ciphertext"].(string)
	return ct, nil
}

// Ping checks that Vault answers and is unsealed; readiness uses it.
func (k *VaultKeys) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	h, err := k.client.Sys().HealthWithContext(ctx)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrKeysUnavailable, describe(err))
	}
	if h.Sealed || !h.Initialized {
		return fmt.Errorf("%w: vault is sealed or not initialized", ErrKeysUnavailable)
	}
	return nil
}

func (k *VaultKeys) write(ctx context.Context, path string, data map[string]any) (*vault.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	s, err := k.client.Logical().WriteWithContext(ctx, path, data)
	if err == nil && s == nil && !strings.Contains(path, "/keys/") {
		return nil, fmt.Errorf("vault: %s: empty answer", path)
	}
	return s, err
}

func (k *VaultKeys) read(ctx context.Context, path string) (*vault.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	s, err := k.client.Logical().ReadWithContext(ctx, path)
	if err == nil && s == nil {
		return nil, &vault.ResponseError{StatusCode: http.StatusNotFound, Errors: []string{path + " not found"}}
	}
	return s, err
}

// classify wraps err as ErrKeysUnavailable when retrying can help: no
// answer, a timeout, 429, 5xx (sealed, standby), or 403 (an expired or
// revoked token, which the lifetime watcher or a new login fixes).
func (k *VaultKeys) classify(what string, err error) error {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		switch {
		case re.StatusCode == http.StatusForbidden:
			if k.cfg.Auth != VaultAuthToken {
				k.relogin()
			}
			return fmt.Errorf("%w: vault: %s: permission denied (token expired or revoked, or the policy lacks this path): %s", ErrKeysUnavailable, what, strings.Join(re.Errors, "; "))
		case re.StatusCode == http.StatusTooManyRequests || re.StatusCode >= 500:
			return fmt.Errorf("%w: vault: %s: %d %s", ErrKeysUnavailable, what, re.StatusCode, strings.Join(re.Errors, "; "))
		default:
			return fmt.Errorf("vault: %s: %d %s", what, re.StatusCode, strings.Join(re.Errors, "; "))
		}
	}
	return fmt.Errorf("%w: vault: %s: %v", ErrKeysUnavailable, what, err)
}

// relogin logs in again after a 403 (a revoked token or lease).
func (k *VaultKeys) relogin() {
	if !k.loginMu.TryLock() {
		return
	}
	defer k.loginMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), k.cfg.Timeout)
	defer cancel()
	if _, err := k.login(ctx); err != nil {
		k.logger.Error("vault: login after permission denied", "error", err.Error())
	}
}

func describe(err error) error {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		return fmt.Errorf("%d %s", re.StatusCode, strings.Join(re.Errors, "; "))
	}
	return err
}

func isKeyNotFound(err error) bool {
	var re *vault.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
		return false
	}
	for _, e := range re.Errors {
		if strings.Contains(e, "key not found") || strings.Contains(e, "encryption key not found") {
			return true
		}
	}
	return false
}

func isNotFound(err error) bool {
	var re *vault.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// backoff returns the wait before retry attempt (from 0): 100 ms doubling
// to at most 5 s.
func backoff(attempt int) time.Duration {
	d := 100 * time.Millisecond
	for i := 0; i < attempt && d < 5*time.Second; i++ {
		d *= 2
	}
	return min(d, 5*time.Second)
}

var _ KeyAdmin = (*VaultKeys)(nil)

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}
