package containertest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
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
	// APIKey is the read-write key every call must carry (the store
	// listens on every interface of the container, so it wants one).
	APIKey string
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
	key := "test-" + rand.Text()
	cmd := append([]string{"vectordb",
		"--listen", fmt.Sprintf("0.0.0.0:%d", VectorDBPort),
		"--data-dir", "/data",
		"--api-key", key,
	}, args...)
	c, hostAddr := e.startListener(ctx, tb, "vectordb", image, VectorDBAlias, VectorDBPort, cmd)
	return &VectorDB{Container: c, Addr: net.JoinHostPort(VectorDBAlias, fmt.Sprint(VectorDBPort)), HostAddr: hostAddr, APIKey: key}
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
	start := time.Now()
	if err := buildBinary(ctx, root, name, filepath.Join(bctx, name), t); err != nil {
		return "", err
	}
	logf("containertest: built %s in %v", name, time.Since(start).Round(time.Millisecond))
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return "", fmt.Errorf("build image %s: docker: %w", name, err)
	}
	defer provider.Close()
	return packImage(ctx, provider, root, name, t.Dockerfile, bctx, logf)
}
