package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DataKeySize is the size of a segment's data key and of a key-encryption
// key: AES-256.
const DataKeySize = 32

// KeyProvider makes and unwraps data keys under key-encryption keys
// (KEKs) that never leave the provider. Each tenant's records in a segment
// are encrypted with a data key of their own: the segment's key file keeps
// the wrapped data key and the id of the KEK that wrapped it (for Vault,
// the tenant's transit key), so a KEK can rotate, and destroying a
// tenant's KEK shreds that tenant's records only.
//
// FileKeys (a local key file, one KEK for every tenant) and VaultKeys (one
// transit key per tenant) implement it. Implementations must be safe for
// concurrent use.
type KeyProvider interface {
	// NewDataKey returns a fresh data key for tenant, wrapped under the
	// current KEK of that tenant.
	NewDataKey(ctx context.Context, tenant string) (DataKey, error)
	// UnwrapKey returns the data key in ref.
	UnwrapKey(ctx context.Context, ref KeyRef) ([]byte, error)
}

// DataKey is a fresh data key, in the clear and wrapped.
type DataKey struct {
	// KeyID names the KEK that wrapped Key.
	KeyID string
	// Key is the plaintext data key, DataKeySize bytes; it is kept only
	// in memory.
	Key []byte
	// Wrapped is Key encrypted under KeyID.
	Wrapped []byte
}

// KeyRef is a stored wrapped data key and the KEK that wrapped it.
type KeyRef struct {
	KeyID   string
	Wrapped []byte
}

// Rewrapper wraps a stored data key again under the latest KEK without
// changing the data key (FileKeys and VaultKeys).
type Rewrapper interface {
	Rewrap(ctx context.Context, ref KeyRef) (KeyRef, error)
}

// KeyAdmin is what a provider offers beyond KeyProvider to operate its
// KEKs (VaultKeys).
type KeyAdmin interface {
	Rewrapper
	// Rotate starts a new version of every KEK and returns their ids.
	Rotate(ctx context.Context) ([]string, error)
	// RaiseMinDecryption refuses KEK versions older than the latest.
	RaiseMinDecryption(ctx context.Context) ([]string, error)
	// Shred destroys tenant's KEK.
	Shred(ctx context.Context, tenant string) error
}

// Errors of key handling.
var (
	ErrUnknownKey = errors.New("unknown key id")
	// ErrUnwrap: the provider refused the wrapped key; it was changed.
	ErrUnwrap = errors.New("cannot unwrap data key")
	// ErrKeyDestroyed: the KEK is gone (crypto-shredded).
	ErrKeyDestroyed = errors.New("key destroyed")
	// ErrKeysUnavailable: the provider cannot be reached or failed;
	// retrying later can succeed.
	ErrKeysUnavailable = errors.New("keys unavailable")
	// ErrNotSupported: the provider cannot do this (a key file cannot
	// rotate in place or shred one tenant).
	ErrNotSupported = errors.New("not supported by this key provider")
)

// FileKeys is a KeyProvider backed by a local key file: one hex-encoded
// 256-bit key per line, the first line being the current KEK and the
// others retired KEKs kept to read old segments; blank lines and lines
// starting with '#' are ignored. Rotate by adding a new first line.
//
// A KEK's id is "file-" and the first 16 hex digits of SHA-256 over
// "tributary-audit-kek" and the key, so ids reveal nothing about keys.
type FileKeys struct {
	currentID string
	keys      map[string]cipher.AEAD
}

// LoadKeyFile reads the key file at path, creating it with one random key
// (mode 0600, parent directories 0700) when it does not exist. A key file
// that group or others may read or write is refused, as ssh refuses such
// private keys.
func LoadKeyFile(path string) (*FileKeys, error) {
	if path == "" {
		return nil, errors.New("key file: empty path")
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		if err := createKeyFile(path); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat key file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s: not a regular file", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s: permissions %04o are too open, want 0600", path, st.Mode().Perm())
	}
	data, err := readLimited(f, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	return ParseKeys(data)
}

// ParseKeys parses key-file content (see FileKeys).
func ParseKeys(data []byte) (*FileKeys, error) {
	k := &FileKeys{keys: map[string]cipher.AEAD{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		key, err := hex.DecodeString(s)
		if err != nil || len(key) != DataKeySize {
			return nil, fmt.Errorf("key file line %d: want %d hex digits", line, 2*DataKeySize)
		}
		id := KeyID(key)
		aead, err := newGCM(key)
		if err != nil {
			return nil, err
		}
		if k.currentID == "" {
			k.currentID = id
		}
		k.keys[id] = aead
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if k.currentID == "" {
		return nil, errors.New("key file: no key")
	}
	return k, nil
}

// KeyID returns the id FileKeys gives the KEK key.
func KeyID(key []byte) string {
	h := sha256.New()
	h.Write([]byte("tributary-audit-kek\x00"))
	h.Write(key)
	return "file-" + hex.EncodeToString(h.Sum(nil)[:8])
}

// CurrentKeyID returns the id of the KEK that wraps new data keys.
func (k *FileKeys) CurrentKeyID() string { return k.currentID }

// NewDataKey returns a random data key wrapped under the current KEK
// (every tenant shares the file's KEK).
func (k *FileKeys) NewDataKey(_ context.Context, _ string) (DataKey, error) {
	dk := make([]byte, DataKeySize)
	if _, err := rand.Read(dk); err != nil {
		return DataKey{}, fmt.Errorf("data key: %w", err)
	}
	id, wrapped, err := k.WrapKey(dk)
	return DataKey{KeyID: id, Key: dk, Wrapped: wrapped}, err
}

// WrapKey encrypts dataKey with AES-256-GCM under the current KEK, the KEK
// id as additional data; the result is nonce || ciphertext || tag.
func (k *FileKeys) WrapKey(dataKey []byte) (string, []byte, error) {
	aead := k.keys[k.currentID]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", nil, fmt.Errorf("wrap key: %w", err)
	}
	return k.currentID, aead.Seal(nonce, nonce, dataKey, []byte(k.currentID)), nil
}

// Rewrap unwraps ref and wraps its data key under the current KEK (after a
// new first line was added to the key file).
func (k *FileKeys) Rewrap(ctx context.Context, ref KeyRef) (KeyRef, error) {
	dk, err := k.UnwrapKey(ctx, ref)
	if err != nil {
		return ref, err
	}
	id, wrapped, err := k.WrapKey(dk)
	return KeyRef{KeyID: id, Wrapped: wrapped}, err
}

// UnwrapKey reverses WrapKey with the KEK ref.KeyID.
func (k *FileKeys) UnwrapKey(_ context.Context, ref KeyRef) ([]byte, error) {
	keyID, wrapped := ref.KeyID, ref.Wrapped
	aead, ok := k.keys[keyID]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKey, keyID)
	}
	ns := aead.NonceSize()
	if len(wrapped) < ns+aead.Overhead() {
		return nil, fmt.Errorf("%w: too short", ErrUnwrap)
	}
	key, err := aead.Open(nil, wrapped[:ns], wrapped[ns:], []byte(keyID))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnwrap, err)
	}
	if len(key) != DataKeySize {
		return nil, fmt.Errorf("%w: data key of %d bytes", ErrUnwrap, len(key))
	}
	return key, nil
}

func createKeyFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	key := make([]byte, DataKeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	content := "# Tributary audit key-encryption keys: first line current, others retired.\n" + hex.EncodeToString(key) + "\n"
	// O_EXCL: two processes racing to create it must not both win.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return fmt.Errorf("write key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close key file: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return aead, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	return nil
}
