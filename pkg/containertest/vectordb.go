package containertest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// VectorDBAlias is the vector store container's name on the test network,
// and VectorDBPort its gRPC port (Qdrant's); services reach it at
// VectorDBAlias:VectorDBPort.
const (
	VectorDBAlias = "vectordb"
	VectorDBPort  = 6334
)

// VectorDB is a running `tributary vectordb` container.
type VectorDB struct {
	Container testcontainers.Container
	// Addr is the store's gRPC address on the test network, for services.
	Addr string
	// HostAddr is the gRPC port mapped onto the host, for clients in the
	// test.
	HostAddr string
}

// StartVectorDB starts `tributary vectordb` (the embedded store serving
// Qdrant's gRPC API) on the network under VectorDBAlias, with its data in
// the image's /data, and waits until it accepts connections. It needs the
// BinaryTributary image. args are added to the command line.
func (e *Env) StartVectorDB(ctx context.Context, tb testing.TB, args ...string) *VectorDB {
	tb.Helper()
	image, ok := e.images[BinaryTributary]
	if !ok {
		tb.Fatalf("containertest: no image for %q (pass it to Setup)", BinaryTributary)
	}
	port := fmt.Sprintf("%d/tcp", VectorDBPort)
	cmd := append([]string{"vectordb",
		"--listen", fmt.Sprintf("0.0.0.0:%d", VectorDBPort),
		"--data-dir", "/data",
	}, args...)
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:          image,
			Cmd:            cmd,
			ExposedPorts:   []string{port},
			Networks:       []string{e.Network},
			NetworkAliases: map[string][]string{e.Network: {VectorDBAlias}},
			// A scratch image has no shell for the internal port check.
			WaitingFor: wait.ForListeningPort(port).SkipInternalCheck().WithStartupTimeout(60 * time.Second),
		},
		Started: true,
	})
	testcontainers.CleanupContainer(tb, c)
	if err != nil {
		tb.Fatalf("containertest: start vectordb: %v%s", err, logsOf(ctx, c))
	}
	hostAddr, err := c.PortEndpoint(ctx, port, "")
	if err != nil {
		tb.Fatalf("containertest: vectordb port: %v", err)
	}
	return &VectorDB{Container: c, Addr: net.JoinHostPort(VectorDBAlias, fmt.Sprint(VectorDBPort)), HostAddr: hostAddr}
}

// AddImage builds the image of a binary this package does not list (see
// TargetOf), e.g. a service added after it, from t's main package and
// Dockerfile, registers it under binary for StartService and returns its
// tag. As with Setup, an image whose tag (a hash of binary and Dockerfile)
// exists is reused.
func (e *Env) AddImage(ctx context.Context, tb testing.TB, binary string, t Target) string {
	tb.Helper()
	image, err := buildTargetImage(ctx, e.Root, binary, t, tb.Logf)
	if err != nil {
		tb.Fatalf("containertest: %v", err)
	}
	if e.images == nil {
		e.images = map[string]string{}
	}
	e.images[binary] = image
	return image
}

func buildTargetImage(ctx context.Context, root, name string, t Target, logf func(string, ...any)) (string, error) {
	tmp, err := os.MkdirTemp("", "tributary-image-")
	if err != nil {
		return "", fmt.Errorf("build image %s: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	bctx := filepath.Join(tmp, "ctx")
	if err := os.MkdirAll(filepath.Join(bctx, "data"), 0o755); err != nil {
		return "", fmt.Errorf("build image %s: %w", name, err)
	}
	bin := filepath.Join(bctx, name)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, t.Package)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", name, err, out)
	}
	logf("containertest: built %s in %v", name, time.Since(start).Round(time.Millisecond))
	dockerfile, err := os.ReadFile(filepath.Join(root, t.Dockerfile))
	if err != nil {
		return "", fmt.Errorf("build image %s: %w", name, err)
	}
	sum, err := hashFiles(bin)
	if err != nil {
		return "", fmt.Errorf("build image %s: %w", name, err)
	}
	h := sha256.New()
	h.Write([]byte(sum))
	h.Write(dockerfile)
	tag := hex.EncodeToString(h.Sum(nil))[:16]
	repo := "tributary-test/" + name
	image := repo + ":" + tag

	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return "", fmt.Errorf("build image %s: docker: %w", name, err)
	}
	defer provider.Close()
	if _, err := provider.Client().ImageInspect(ctx, image); err == nil {
		logf("containertest: reusing image %s", image)
		return image, nil
	}
	if err := os.WriteFile(filepath.Join(bctx, "Dockerfile"), dockerfile, 0o644); err != nil {
		return "", fmt.Errorf("build image %s: %w", name, err)
	}
	start = time.Now()
	_, err = provider.BuildImage(ctx, &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		Context:        bctx,
		Dockerfile:     "Dockerfile",
		Repo:           repo,
		Tag:            tag,
		KeepImage:      true,
		BuildLogWriter: io.Discard,
	}})
	if err != nil {
		return "", fmt.Errorf("build image %s: %w", name, err)
	}
	logf("containertest: built image %s in %v", image, time.Since(start).Round(time.Millisecond))
	return image, nil
}
