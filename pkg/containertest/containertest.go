// Package containertest runs Tributary's own binaries in Docker containers
// for tests, through testcontainers-go.
//
// Nothing is pulled from a registry: the binaries are built on the host as
// static Linux executables (CGO_ENABLED=0), and each image is built from
// the repository's Dockerfile for that binary, which starts FROM scratch and
// copies the binary in. Images are tagged tributary-test/<binary>:<hash of
// binary and Dockerfile> and kept, so a second run with unchanged code
// reuses them (Go's build cache makes the binaries cheap to rebuild, and
// -trimpath makes them reproducible).
//
// Testcontainers' reaper (Ryuk) needs an image from Docker Hub, so it is
// disabled; every container and network is removed by a tb.Cleanup that
// this package registers.
//
// A typical test:
//
//	env := containertest.Setup(ctx, t)
//	broker := env.StartBroker(ctx, t)
//	svc := env.StartService(ctx, t, containertest.Service{
//		Binary: containertest.BinaryIngest,
//		Env:    map[string]string{"TRIBUTARY_KAFKA_BROKERS": broker.Addr},
//	})
//	// svc.URL is the service's HTTP address on the host;
//	// broker.Dialer() reaches the broker from the host.
package containertest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Binaries this package knows how to build, with the package that holds
// their main and the Dockerfile that packs them (paths from the
// repository root).
const (
	BinaryTributary = "tributary"
	BinaryIngest    = "ingest"
)

// Target is a binary to build and pack into an image.
type Target struct {
	// Package is the main package, relative to the repository root.
	Package string
	// Dockerfile is the image's Dockerfile, relative to the repository
	// root. Its build context holds the binary under its name and an empty
	// directory data/.
	Dockerfile string
}

// TargetOf returns the target of a binary name.
func TargetOf(binary string) (Target, bool) {
	switch binary {
	case BinaryTributary:
		return Target{Package: "./cmd/tributary", Dockerfile: "cmd/tributary/Dockerfile"}, true
	case BinaryIngest:
		return Target{Package: "./services/ingest/cmd/ingest", Dockerfile: "services/ingest/Dockerfile"}, true
	}
	return Target{}, false
}

// BrokerAlias is the broker container's name on the test network, and
// BrokerPort its Kafka port; services reach it at BrokerAlias:BrokerPort.
const (
	BrokerAlias = "broker"
	BrokerPort  = 9092
)

// Env is a Docker network with the images of the binaries built for it.
type Env struct {
	// Root is the repository root.
	Root string
	// Network is the name of the Docker network the containers join.
	Network string

	images map[string]string
}

// Setup builds every binary and image (or reuses cached images) and
// creates a network removed when tb ends. It fails tb when Docker is not
// reachable: a test that asked for containers must not pass without them.
func Setup(ctx context.Context, tb testing.TB, binaries ...string) *Env {
	tb.Helper()
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		// The reaper image cannot be pulled; cleanup is ours.
		tb.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" && os.Getenv("DOCKER_HOST") == "" && localDaemon() {
		// Inside a container (/.dockerenv) testcontainers reaches published
		// ports through a network gateway; when the daemon's bridge is in
		// our own network namespace, loopback is the reliable way.
		tb.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	}
	if len(binaries) == 0 {
		binaries = []string{BinaryTributary, BinaryIngest}
	}
	root, err := RepoRoot()
	if err != nil {
		tb.Fatalf("containertest: %v", err)
	}
	images, err := BuildImages(ctx, root, binaries, tb.Logf)
	if err != nil {
		tb.Fatalf("containertest: %v", err)
	}
	nw, err := network.New(ctx)
	testcontainers.CleanupNetwork(tb, nw)
	if err != nil {
		tb.Fatalf("containertest: create network: %v", err)
	}
	return &Env{Root: root, Network: nw.Name, images: images}
}

// localDaemon reports whether the Docker daemon's default bridge lives in
// this process's network namespace, so that published ports are on
// loopback.
func localDaemon() bool {
	_, err := net.InterfaceByName("docker0")
	return err == nil
}

// Image returns the tag of the image built for binary.
func (e *Env) Image(binary string) string { return e.images[binary] }

// RepoRoot returns the repository root: the nearest directory at or above
// the working directory that holds go.work.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no go.work above the working directory")
		}
		dir = parent
	}
}

// BuildImages builds static binaries of the named targets into a temporary
// directory and an image for each, and returns their tags by binary name.
// An image whose tag (a hash of binary and Dockerfile) exists is reused.
func BuildImages(ctx context.Context, root string, binaries []string, logf func(string, ...any)) (map[string]string, error) {
	tmp, err := os.MkdirTemp("", "tributary-images-")
	if err != nil {
		return nil, fmt.Errorf("build images: %w", err)
	}
	defer os.RemoveAll(tmp)

	start := time.Now()
	if err := BuildBinaries(ctx, root, tmp, binaries); err != nil {
		return nil, err
	}
	logf("containertest: built %v in %v", binaries, time.Since(start).Round(time.Millisecond))

	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return nil, fmt.Errorf("build images: docker: %w", err)
	}
	defer provider.Close()

	images := make(map[string]string, len(binaries))
	for _, name := range binaries {
		t, _ := TargetOf(name)
		bctx := filepath.Join(tmp, "ctx-"+name)
		if err := os.MkdirAll(filepath.Join(bctx, "data"), 0o755); err != nil {
			return nil, fmt.Errorf("build image %s: %w", name, err)
		}
		if err := os.Rename(filepath.Join(tmp, name), filepath.Join(bctx, name)); err != nil {
			return nil, fmt.Errorf("build image %s: %w", name, err)
		}
		image, err := packImage(ctx, provider, root, name, t.Dockerfile, bctx, logf)
		if err != nil {
			return nil, err
		}
		images[name] = image
	}
	return images, nil
}

// packImage builds the image of binary name from the Dockerfile at
// dockerfile (relative to root) and the build context bctx, which holds the
// binary under its name and an empty directory data/. The tag is a hash of
// binary and Dockerfile; an image with that tag is reused.
func packImage(ctx context.Context, provider *testcontainers.DockerProvider, root, name, dockerfile, bctx string, logf func(string, ...any)) (string, error) {
	df, err := os.ReadFile(filepath.Join(root, dockerfile))
	if err != nil {
		return "", fmt.Errorf("build image %s: %w", name, err)
	}
	sum, err := hashFiles(filepath.Join(bctx, name))
	if err != nil {
		return "", fmt.Errorf("build image %s: %w", name, err)
	}
	h := sha256.New()
	h.Write([]byte(sum))
	h.Write(df)
	tag := hex.EncodeToString(h.Sum(nil))[:16]
	repo := "tributary-test/" + name
	image := repo + ":" + tag
	if _, err := provider.Client().ImageInspect(ctx, image); err == nil {
		logf("containertest: reusing image %s", image)
		return image, nil
	}
	if err := os.WriteFile(filepath.Join(bctx, "Dockerfile"), df, 0o644); err != nil {
		return "", fmt.Errorf("build image %s: %w", name, err)
	}
	start := time.Now()
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

// BuildBinaries builds the named targets as static Linux binaries for the
// host's architecture into dir, each under its name.
func BuildBinaries(ctx context.Context, root, dir string, binaries []string) error {
	for _, name := range binaries {
		t, ok := TargetOf(name)
		if !ok {
			return fmt.Errorf("build binaries: unknown binary %q", name)
		}
		if err := buildBinary(ctx, root, name, filepath.Join(dir, name), t); err != nil {
			return err
		}
	}
	return nil
}

// buildBinary builds t's main package as a static Linux binary for the
// host's architecture at out.
func buildBinary(ctx context.Context, root, name, out string, t Target) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, t.Package)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", name, err, b)
	}
	return nil
}

func hashFiles(paths ...string) (string, error) {
	h := sha256.New()
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, f)
		_ = f.Close()
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Broker is a running broker container.
type Broker struct {
	Container testcontainers.Container
	// Addr is the broker's address on the test network, for services.
	Addr string
	// HostAddr is the broker's port mapped onto the host.
	HostAddr string
}

// StartBroker starts `tributary broker` on the network under BrokerAlias,
// advertising BrokerAlias:BrokerPort, and waits until it accepts
// connections. args are added to the broker's command line.
func (e *Env) StartBroker(ctx context.Context, tb testing.TB, args ...string) *Broker {
	tb.Helper()
	addr := net.JoinHostPort(BrokerAlias, fmt.Sprint(BrokerPort))
	cmd := append([]string{"broker",
		"--listen", fmt.Sprintf("0.0.0.0:%d", BrokerPort),
		"--advertise", addr,
	}, args...)
	c, hostAddr := e.startListener(ctx, tb, "broker", e.images[BinaryTributary], BrokerAlias, BrokerPort, cmd)
	return &Broker{Container: c, Addr: addr, HostAddr: hostAddr}
}

// startListener starts image with cmd on the network under alias and waits
// until its TCP port accepts connections; it returns the container and the
// port's address on the host. what names the container in failures.
func (e *Env) startListener(ctx context.Context, tb testing.TB, what, image, alias string, port int, cmd []string) (testcontainers.Container, string) {
	tb.Helper()
	p := fmt.Sprintf("%d/tcp", port)
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:          image,
			Cmd:            cmd,
			ExposedPorts:   []string{p},
			Networks:       []string{e.Network},
			NetworkAliases: map[string][]string{e.Network: {alias}},
			// A scratch image has no shell for the internal port check.
			WaitingFor: wait.ForListeningPort(p).SkipInternalCheck().WithStartupTimeout(60 * time.Second),
		},
		Started: true,
	})
	testcontainers.CleanupContainer(tb, c)
	if err != nil {
		tb.Fatalf("containertest: start %s: %v%s", what, err, logsOf(ctx, c))
	}
	hostAddr, err := c.PortEndpoint(ctx, p, "")
	if err != nil {
		tb.Fatalf("containertest: %s port: %v", what, err)
	}
	return c, hostAddr
}

// Dialer returns a dial function for Kafka clients on the host: the broker
// advertises its network address (BrokerAlias:BrokerPort), which the host
// cannot resolve, so that address is sent to the mapped port instead.
func (b *Broker) Dialer() func(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		if address == b.Addr {
			address = b.HostAddr
		}
		return d.DialContext(ctx, network, address)
	}
}

// kafkaDialer returns a kafka-go dialer that reaches the broker from the
// host.
func (b *Broker) kafkaDialer() *kafka.Dialer {
	return &kafka.Dialer{Timeout: 10 * time.Second, DialFunc: b.Dialer()}
}

// ReadAll returns every message now in topic, ordered by partition and
// offset, reading from the host without a consumer group.
func (b *Broker) ReadAll(ctx context.Context, topic string) ([]kafka.Message, error) {
	d := b.kafkaDialer()
	conn, err := d.DialContext(ctx, "tcp", b.Addr)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", topic, err)
	}
	parts, err := conn.ReadPartitions(topic)
	_ = conn.Close()
	if err != nil {
		return nil, fmt.Errorf("read %s: partitions: %w", topic, err)
	}
	var out []kafka.Message
	for _, p := range parts {
		msgs, err := b.readPartition(ctx, d, topic, p.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, msgs...)
	}
	return out, nil
}

func (b *Broker) readPartition(ctx context.Context, d *kafka.Dialer, topic string, partition int) ([]kafka.Message, error) {
	leader, err := d.DialLeader(ctx, "tcp", b.Addr, topic, partition)
	if err != nil {
		return nil, fmt.Errorf("read %s/%d: %w", topic, partition, err)
	}
	first, ferr := leader.ReadFirstOffset()
	last, lerr := leader.ReadLastOffset()
	_ = leader.Close()
	if err := errors.Join(ferr, lerr); err != nil {
		return nil, fmt.Errorf("read %s/%d offsets: %w", topic, partition, err)
	}
	if last <= first {
		return nil, nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   []string{b.Addr},
		Topic:     topic,
		Partition: partition,
		Dialer:    d,
		MaxWait:   100 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return nil, fmt.Errorf("read %s/%d: %w", topic, partition, err)
	}
	var out []kafka.Message
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return nil, fmt.Errorf("read %s/%d at %d: %w", topic, partition, first+int64(len(out)), err)
		}
		out = append(out, m)
		if m.Offset >= last-1 {
			return out, nil
		}
	}
}

// ReadN waits up to timeout for topic to hold at least n messages and
// returns all of them.
func (b *Broker) ReadN(ctx context.Context, topic string, n int, timeout time.Duration) ([]kafka.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		msgs, err := b.ReadAll(ctx, topic)
		if err == nil && len(msgs) >= n {
			return msgs, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("%d of %d messages", len(msgs), n)
			}
			return msgs, fmt.Errorf("read %s: %w", topic, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Service describes a service container to start.
type Service struct {
	// Binary names the image to run, e.g. BinaryIngest.
	Binary string
	// Args are the command-line arguments.
	Args []string
	// Env is the environment.
	Env map[string]string
	// Alias is the container's name on the network; default Binary.
	Alias string
	// HTTPPort is the port the service listens on for HTTP inside the
	// container; default 8080. Readiness is GET /readyz answering 200.
	HTTPPort int
	// Tmpfs mounts, e.g. {"/data": "rw"}.
	Tmpfs map[string]string
}

// Running is a started service container.
type Running struct {
	Container testcontainers.Container
	// URL is the service's HTTP base URL on the host, e.g.
	// "http://127.0.0.1:32768".
	URL string
}

// StartService starts a service container on the network and waits until
// its /readyz answers 200.
func (e *Env) StartService(ctx context.Context, tb testing.TB, s Service) *Running {
	tb.Helper()
	image, ok := e.images[s.Binary]
	if !ok {
		tb.Fatalf("containertest: no image for %q (pass it to Setup)", s.Binary)
	}
	if s.HTTPPort == 0 {
		s.HTTPPort = 8080
	}
	if s.Alias == "" {
		s.Alias = s.Binary
	}
	port := fmt.Sprintf("%d/tcp", s.HTTPPort)
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:          image,
			Cmd:            s.Args,
			Env:            s.Env,
			ExposedPorts:   []string{port},
			Networks:       []string{e.Network},
			NetworkAliases: map[string][]string{e.Network: {s.Alias}},
			Tmpfs:          s.Tmpfs,
			WaitingFor: wait.ForHTTP("/readyz").WithPort(port).
				WithStartupTimeout(90 * time.Second).
				WithPollInterval(200 * time.Millisecond),
		},
		Started: true,
	})
	testcontainers.CleanupContainer(tb, c)
	if err != nil {
		tb.Fatalf("containertest: start %s: %v%s", s.Binary, err, logsOf(ctx, c))
	}
	u, err := c.PortEndpoint(ctx, port, "http")
	if err != nil {
		tb.Fatalf("containertest: %s port: %v", s.Binary, err)
	}
	return &Running{Container: c, URL: u}
}

// Logs returns the container's output, for failure messages.
func Logs(ctx context.Context, c testcontainers.Container) string {
	if c == nil {
		return ""
	}
	rc, err := c.Logs(ctx)
	if err != nil {
		return fmt.Sprintf("(logs: %v)", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 64<<10))
	if err != nil {
		return fmt.Sprintf("(logs: %v)", err)
	}
	return string(b)
}

func logsOf(ctx context.Context, c testcontainers.Container) string {
	if c == nil {
		return ""
	}
	if l := strings.TrimSpace(Logs(ctx, c)); l != "" {
		return "\ncontainer output:\n" + l
	}
	return ""
}
