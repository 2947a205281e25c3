package qdrantsuite_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/vectordb"
)

const clientModule = "github.com/qdrant/go-client"

// TestOfficialClientSuite copies the pinned go-client module, applies the
// harness patch, serves a fresh store and runs `go test ./qdrant_test/` of
// the copy against it. Every test of the suite must pass; none may skip.
func TestOfficialClientSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs another module's tests")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to run the suite: %v", err)
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git is needed to apply the harness patch: %v", err)
	}
	ctx := t.Context()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-10*time.Second))
		defer cancel()
	}

	src := moduleDir(t, goBin)
	work := t.TempDir()
	dst := filepath.Join(work, "go-client")
	copyTree(t, src, dst)
	patch, err := filepath.Abs(filepath.Join("testdata", "image_test.patch"))
	if err != nil {
		t.Fatal(err)
	}
	apply := exec.CommandContext(ctx, "git", "apply", "--verbose", patch)
	apply.Dir = dst
	// Never let git find an enclosing repository: the copy is plain files.
	apply.Env = append(os.Environ(), "GIT_CEILING_DIRECTORIES="+work)
	if out, err := apply.CombinedOutput(); err != nil {
		t.Fatalf("git apply %s (does the pinned go-client still match the patch?): %v\n%s", patch, err, out)
	}

	store, err := vectordb.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- vectordb.Serve(sctx, store, lis, nil, 5*time.Second) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		if err := store.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})

	cmd := exec.CommandContext(ctx, goBin, "test", "-count=1", "-json", "./qdrant_test/")
	cmd.Dir = dst
	cmd.Env = append(os.Environ(),
		"GOWORK=off",
		"GOFLAGS=-mod=mod",
		"QDRANT_SUITE_ADDR="+lis.Addr().String(),
	)
	out, runErr := cmd.Output()
	passed, failed, skipped := map[string]bool{}, map[string]bool{}, map[string]bool{}
	var log strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			Action, Test, Output string
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		log.WriteString(ev.Output)
		if ev.Test == "" {
			continue
		}
		switch ev.Action {
		case "pass":
			passed[ev.Test] = true
		case "fail":
			failed[ev.Test] = true
		case "skip":
			skipped[ev.Test] = true
		}
	}
	if runErr != nil || len(failed) > 0 || len(skipped) > 0 {
		var stderr []byte
		if ee, ok := runErr.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go-client suite: %v; failed %v, skipped %v\n%s\n%s", runErr, keys(failed), keys(skipped), log.String(), stderr)
	}
	// The suite's tests that talk to the server; all must have run.
	for _, name := range []string{
		"TestHealthCheck", "TestCollectionsClient", "TestPointsClient", "TestSnapshotsClient",
		"TestCollectionsClient/AliasOperations/RenameAlias", "TestCollectionsClient/ShardKeyOperations/CreateShardKey",
		"TestPointsClient/QueryGroups", "TestPointsClient/UpdateBatch", "TestSnapshotsClient/CreateFullSnapshot",
	} {
		if !passed[name] {
			t.Errorf("%s did not pass (passed: %v)", name, keys(passed))
		}
	}
	t.Logf("go-client %s suite: %d tests and subtests passed", filepath.Base(src), len(passed))
}

// moduleDir returns the module cache directory of the go-client version
// this module requires, downloading it when needed.
func moduleDir(t *testing.T, goBin string) string {
	t.Helper()
	out, err := exec.Command(goBin, "list", "-m", "-f", "{{.Version}}", clientModule).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", clientModule, err)
	}
	version := strings.TrimSpace(string(out))
	if !regexp.MustCompile(`^v\d+\.\d+\.\d+$`).MatchString(version) {
		t.Fatalf("unexpected %s version %q", clientModule, version)
	}
	out, err = exec.Command(goBin, "mod", "download", "-json", clientModule+"@"+version).Output()
	if err != nil {
		t.Fatalf("go mod download %s@%s: %v", clientModule, version, err)
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Fatalf("go mod download %s@%s: no directory in %s", clientModule, version, out)
	}
	return m.Dir
}

// copyTree copies the regular files under src to dst, writable (the module
// cache is read-only).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
