package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
)

// The format-1 fixture (testdata/v1log, see its README): 300 records of
// two tenants in 9 segments, the last unsealed, and what the earlier
// release's Scan returned for it.
const (
	v1Dir      = "testdata/v1log"
	v1Records  = 300
	v1Segments = 9
	v1Head     = "71ff8d99adc1bd034ccc918277eb52f06099cf3f340230fa11d3060fc0bf30df"
)

// v1Keys loads the fixture's key file (git does not keep its 0600 mode,
// so it is parsed, not loaded).
func v1Keys(t testing.TB) *FileKeys {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(v1Dir, "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKeys(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// v1Golden returns the earlier release's export of the fixture, one
// canonical record per line.
func v1Golden(t *testing.T) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(v1Dir, "export.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	if len(lines) != v1Records {
		t.Fatalf("golden export has %d lines, want %d", len(lines), v1Records)
	}
	return lines
}

func scanAll(t *testing.T, l *Log, only func(string) bool) []Entry {
	t.Helper()
	var out []Entry
	if err := l.Scan(context.Background(), only, func(e Entry) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return out
}

func TestFormat1FixtureVerifyAndExport(t *testing.T) {
	ctx := context.Background()
	dir := copyDir(t, v1Dir)
	for _, keys := range []KeyProvider{nil, v1Keys(t)} {
		rep, err := Verify(ctx, dir, keys)
		if err != nil {
			t.Fatalf("Verify (keys %v): %v", keys != nil, err)
		}
		if rep.Segments != v1Segments || rep.Records != v1Records || rep.LastSeq != v1Records || rep.Head != v1Head || rep.Sealed || rep.Decrypted != (keys != nil) {
			t.Fatalf("Verify (keys %v) = %+v", keys != nil, rep)
		}
	}

	l, err := Open(ctx, dir, v1Keys(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer l.Close()
	golden := v1Golden(t)
	got := scanAll(t, l, nil)
	if len(got) != len(golden) {
		t.Fatalf("export has %d records, want %d", len(got), len(golden))
	}
	for i, e := range got {
		b, _ := e.Bytes()
		if !bytes.Equal(b, golden[i]) {
			t.Fatalf("record %d:\n got %s\nwant %s", i+1, b, golden[i])
		}
		// What the export writes when it encodes again (a filtered
		// record, say) is the same bytes.
		if m, err := e.Record.Marshal(); err != nil || !bytes.Equal(m, golden[i]) {
			t.Fatalf("record %d re-encodes as %s (%v)", i+1, m, err)
		}
	}
	var acme [][]byte
	for _, g := range golden {
		if bytes.Contains(g, []byte(`"tenant":"acme"`)) {
			acme = append(acme, g)
		}
	}
	only := scanAll(t, l, func(tenant string) bool { return tenant == "acme" })
	if len(only) != len(acme) || len(acme) == 0 || len(acme) == len(golden) {
		t.Fatalf("tenant acme: %d records, want %d of %d", len(only), len(acme), len(golden))
	}
	for i, e := range only {
		if b, _ := e.Bytes(); !bytes.Equal(b, acme[i]) {
			t.Fatalf("tenant acme record %d: got %s, want %s", i, b, acme[i])
		}
	}
	// Open sealed the format-1 tail in format 1 and started a format-2
	// segment.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, dir, v1Keys(t))
	if err != nil || rep.Segments != v1Segments+1 || rep.Records != v1Records || rep.Head != v1Head || !rep.Sealed {
		t.Fatalf("after Open and Close: Verify = %+v, %v", rep, err)
	}
	if h := readHeaderOf(t, segPath(dir, v1Segments-1)); h.version != formatV1 {
		t.Fatalf("last format-1 segment now has version %d", h.version)
	}
}

func readHeaderOf(t *testing.T, path string) header {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, _, err := readHeader(f)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestFormat1TamperDetected(t *testing.T) {
	ctx := context.Background()
	seg := uint64(3)
	for _, tc := range []struct {
		name   string
		edit   func(t *testing.T, b []byte) []byte
		keys   bool   // only with keys (without, the chain alone cannot tell)
		reason string // in the error
		record uint64 // expected frame; 0: header
	}{
		{"record ciphertext", func(t *testing.T, b []byte) []byte {
			sp := v1Frame(t, b, 5)
			b[sp.end-3] ^= 1
			return b
		}, false, "authentication failed", 5},
		{"record seq", func(t *testing.T, b []byte) []byte {
			sp := v1Frame(t, b, 2)
			b[sp.off+4+8] ^= 1
			return b
		}, false, "seq", 2},
		{"record removed", func(t *testing.T, b []byte) []byte {
			sp := v1Frame(t, b, 4)
			return append(b[:sp.off:sp.off], b[sp.end:]...)
		}, false, "want", 4},
		{"wrapped data key", func(t *testing.T, b []byte) []byte {
			b[headerSize+2+len(v1Keys(t).CurrentKeyID())+2+20] ^= 1
			return b
		}, true, "data key refused", 0},
		{"seal tag", func(t *testing.T, b []byte) []byte {
			b[len(b)-1] ^= 1
			return b
		}, true, "seal authentication failed", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, v1Dir)
			edit(t, segPath(dir, seg), func(b []byte) []byte { return tc.edit(t, b) })
			modes := []KeyProvider{v1Keys(t)}
			if !tc.keys {
				modes = append(modes, nil)
			}
			for _, keys := range modes {
				_, err := Verify(ctx, dir, keys)
				var ce *CorruptError
				if !errors.As(err, &ce) {
					t.Fatalf("keys %v: Verify = %v, want a *CorruptError", keys != nil, err)
				}
				if ce.Segment != segmentName(seg) {
					t.Fatalf("keys %v: reported in %q (%v)", keys != nil, ce.Segment, err)
				}
				if keys != nil && (!strings.Contains(ce.Reason, tc.reason) || (tc.record != 0 && ce.Record != tc.record)) {
					t.Fatalf("keys %v: %v; want %q at frame %d", keys != nil, err, tc.reason, tc.record)
				}
			}
			if _, err := Open(ctx, dir, v1Keys(t)); err == nil {
				t.Fatal("Open accepted a tampered format-1 log")
			}
		})
	}
}

// v1Frame returns the span of the n-th (1-based) frame of a format-1
// segment.
func v1Frame(t *testing.T, b []byte, n int) frameSpan {
	t.Helper()
	_, off, err := readHeader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; ; i++ {
		sp := frameSpan{off, off + 4 + int64(binary.BigEndian.Uint32(b[off:]))}
		if i == n {
			return sp
		}
		off = sp.end
	}
}

func TestFormat1WrongKeyFile(t *testing.T) {
	dir := copyDir(t, v1Dir)
	_, err := Verify(context.Background(), dir, testKeys(t))
	var ce *CorruptError
	if err == nil || errors.As(err, &ce) || !strings.Contains(err.Error(), "key file the earlier release used") {
		t.Fatalf("Verify with another key file = %v, want a missing-key error that is not corruption", err)
	}
}

// TestFormat1UpgradedLog: a deployment upgraded from format 1 opens its
// log, appends in format 2 behind the format-1 segments, and verifies and
// exports the whole log as one chain.
func TestFormat1UpgradedLog(t *testing.T) {
	ctx := context.Background()
	dir := copyDir(t, v1Dir)
	l, err := Open(ctx, dir, v1Keys(t), WithSegmentSize(4<<10))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	// A redelivery of a message the earlier release recorded is skipped:
	// the high-water offsets come from the format-1 records.
	g := v1Golden(t)
	first, err := UnmarshalRecord(g[0])
	if err != nil {
		t.Fatal(err)
	}
	if n, err := l.Append(ctx, []kafka.Message{testMsg(first.Topic, first.Partition, first.Offset, first.Tenant, first.Type)}); err != nil || n != 0 {
		t.Fatalf("redelivery: wrote %d, %v", n, err)
	}
	const added = 120
	for i := 0; i < added; i += 20 {
		var msgs []kafka.Message
		for j := i; j < i+20; j++ {
			tenant := []string{"acme", "globex"}[j%2]
			msgs = append(msgs, testMsg("tributary.audit.v1", 0, int64(j), tenant, fmt.Sprintf("tributary.test.%d", j%3)))
		}
		if n, err := l.Append(ctx, msgs); err != nil || n != len(msgs) {
			t.Fatalf("Append: %d, %v", n, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	h := readHeaderOf(t, segPath(dir, v1Segments))
	if h.version != formatVersion || h.firstSeq != v1Records+1 || fmt.Sprintf("%x", h.prevHash) != v1Head {
		t.Fatalf("first format-2 segment: version %d, first seq %d, previous hash %x; want 2, %d, %s", h.version, h.firstSeq, h.prevHash, v1Records+1, v1Head)
	}
	rep, err := Verify(ctx, dir, v1Keys(t))
	if err != nil || rep.Records != v1Records+added || rep.LastSeq != v1Records+added || rep.Segments < v1Segments+2 || !rep.Sealed {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	if _, err := Verify(ctx, dir, nil); err != nil {
		t.Fatalf("Verify without keys: %v", err)
	}

	l, err = Open(ctx, dir, v1Keys(t))
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer l.Close()
	got := scanAll(t, l, nil)
	if len(got) != v1Records+added {
		t.Fatalf("export has %d records, want %d", len(got), v1Records+added)
	}
	for i, e := range got {
		if e.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i+1, e.Seq)
		}
		b, _ := e.Bytes()
		if i < v1Records && !bytes.Equal(b, g[i]) {
			t.Fatalf("format-1 record %d: got %s, want %s", i+1, b, g[i])
		}
		if i >= v1Records && (e.Topic != "tributary.audit.v1" || e.Offset != int64(i-v1Records)) {
			t.Fatalf("format-2 record %d: %s", i+1, b)
		}
	}

	// The chain crosses the format change: a format-1 record changed
	// after the upgrade breaks the first format-2 segment's link even
	// without keys.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	edit(t, segPath(dir, v1Segments-1), func(b []byte) []byte {
		sp := v1Frame(t, b, 1)
		b[sp.end-1] ^= 1
		return b
	})
	_, err = Verify(ctx, dir, nil)
	var ce *CorruptError
	if !errors.As(err, &ce) || (ce.Segment != segmentName(v1Segments-1) && ce.Segment != segmentName(v1Segments)) {
		t.Fatalf("Verify without keys after a format-1 change = %v", err)
	}
}

// TestFormat1KeysBesideOtherKeys: an upgraded deployment whose new
// segments use other KEKs than the key file (here another key file; Vault
// in TestVaultFormat1Upgrade) reads its format-1 segments through
// WithFormat1Keys, and without it is told which key file is missing.
func TestFormat1KeysBesideOtherKeys(t *testing.T) {
	ctx := context.Background()
	dir := copyDir(t, v1Dir)
	keys := WithFormat1Keys(testKeys(t), v1Keys(t))
	l, err := Open(ctx, dir, keys)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := l.Append(ctx, []kafka.Message{testMsg("tributary.audit.v1", 0, 0, "acme", "tributary.test")}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wrapped, err := readKeyFile(segPath(dir, v1Segments))
	if err != nil || len(wrapped) != 1 || wrapped[0].KeyID != testKeys(t).CurrentKeyID() {
		t.Fatalf("format-2 key file = %v, %v; want the new KEK", wrapped, err)
	}
	if rep, err := Verify(ctx, dir, keys); err != nil || rep.Records != v1Records+1 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	_, err = Verify(ctx, dir, testKeys(t))
	var ce *CorruptError
	if err == nil || errors.As(err, &ce) || !strings.Contains(err.Error(), v1Keys(t).CurrentKeyID()) {
		t.Fatalf("Verify without the old key file = %v", err)
	}
}

// TestVaultFormat1Upgrade: a deployment that moved from the key file to
// Vault when it upgraded keeps its format-1 segments readable with the
// old key file beside Vault's keys, and appends under Vault.
func TestVaultFormat1Upgrade(t *testing.T) {
	v := startVaultDev(t)
	vk := vaultKeys(t, v, v.policyToken(t))
	ctx := context.Background()
	dir := copyDir(t, v1Dir)
	if _, err := Open(ctx, dir, vk); err == nil || !strings.Contains(err.Error(), "key file the earlier release used") {
		t.Fatalf("Open with Vault alone = %v, want the missing key file named", err)
	}
	keys := WithFormat1Keys(vk, v1Keys(t))
	l, err := Open(ctx, dir, keys)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := l.Append(ctx, tenantMsgs(0, 10, "acme", "globex")); err != nil {
		t.Fatalf("Append: %v", err)
	}
	recs, _ := countByTenant(t, l, nil)
	if recs["acme"]+recs["globex"] != v1Records+10 {
		t.Fatalf("export by tenant = %v", recs)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(ctx, dir, keys); err != nil || rep.Records != v1Records+10 || !rep.Decrypted {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// TestSettingsFormat1KeyFile: with Vault, the service reads the key file
// for format-1 segments when there is one, and never creates it.
func TestSettingsFormat1KeyFile(t *testing.T) {
	s := DefaultSettings()
	s.Vault.Addr = "https://vault.invalid:8200"
	base := testKeys(t)
	dir := t.TempDir()
	if k, err := s.withFormat1KeyFile(base, dir); err != nil || k != KeyProvider(base) {
		t.Fatalf("no key file: %v, %v; want the keys unchanged", k, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "audit.key")); err == nil {
		t.Fatal("a key file was created")
	}
	explicit := s
	explicit.KeyFile = filepath.Join(dir, "missing.key")
	if _, err := explicit.withFormat1KeyFile(base, dir); err == nil {
		t.Fatal("a missing explicit key file was accepted")
	}
	b, err := os.ReadFile(filepath.Join(v1Dir, "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "audit.key"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := s.withFormat1KeyFile(base, dir)
	if err != nil {
		t.Fatal(err)
	}
	logDir := copyDir(t, v1Dir)
	if rep, err := Verify(context.Background(), logDir, k); err != nil || rep.Records != v1Records {
		t.Fatalf("Verify with the found key file = %+v, %v", rep, err)
	}
	s.Vault.Addr = ""
	if k, err := s.withFormat1KeyFile(base, dir); err != nil || k != KeyProvider(base) {
		t.Fatalf("without Vault: %v, %v; want the keys unchanged", k, err)
	}
}
