package conformance

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/protobuf/proto"

	"github.com/tributary-rag/tributary/pkg/vectordb"
)

// crashServerEnv names the data directory when the test binary is
// re-executed as a vector store server for the crash test.
const crashServerEnv = "TRIBUTARY_VECTORDB_CRASH_SERVER_DIR"

// runCrashServer serves the store from the directory in crashServerEnv and
// writes its address to addr.txt there; it runs until killed.
func runCrashServer() error {
	dir := os.Getenv(crashServerEnv)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// A small snapshot threshold makes snapshots and WAL compaction happen
	// while the test kills the server.
	// A low ANN threshold puts the HNSW graph (and its persistence in
	// snapshots) on the recovery path too.
	store, err := vectordb.Open(filepath.Join(dir, "data"), vectordb.WithSnapshotThreshold(64<<10), vectordb.WithANNThreshold(500))
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "addr.tmp")
	if err := os.WriteFile(tmp, []byte(lis.Addr().String()), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "addr.txt")); err != nil {
		return err
	}
	serr := vectordb.Serve(ctx, store, lis, nil, time.Second)
	if err := store.Close(); serr == nil {
		serr = err
	}
	return serr
}

type ackedPoint struct {
	vec     []float32
	payload map[string]*qdrant.Value
}

func startCrashServer(t *testing.T, dir string) (*exec.Cmd, *qdrant.Client) {
	t.Helper()
	addrFile := filepath.Join(dir, "addr.txt")
	os.Remove(addrFile)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashServerEnv+"="+dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start server: %v", err)
	}
	// Never leave a server behind when the test stops early; killing one
	// that already exited is harmless.
	t.Cleanup(func() { cmd.Process.Kill() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(addrFile)
		if err == nil {
			host, port, err := splitAddr(string(b))
			if err != nil {
				t.Fatalf("server address: %v", err)
			}
			c, err := qdrant.NewClient(&qdrant.Config{Host: host, Port: port})
			if err != nil {
				t.Fatalf("NewClient: %v", err)
			}
			return cmd, c
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCrashRecovery(t *testing.T) {
	if !target.embedded {
		t.Skip("the crash test kills the embedded store; it cannot kill the server at QDRANT_ADDR")
	}
	ctx := context.Background()
	dir := t.TempDir()
	const coll = "crash"
	const dim = 16
	acked := map[uint64]ackedPoint{}
	var mu sync.Mutex
	const rounds = 4
	for round := 0; round <= rounds; round++ {
		cmd, c := startCrashServer(t, dir)
		if round == 0 {
			if err := c.CreateCollection(ctx, &qdrant.CreateCollection{
				CollectionName: coll,
				VectorsConfig:  qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: dim, Distance: qdrant.Distance_Dot}),
			}); err != nil {
				t.Fatalf("CreateCollection: %v", err)
			}
		}
		verifyAcked(t, c, coll, acked)
		verifySearch(t, c, coll, dim, len(acked))
		if round == rounds {
			c.Close()
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatalf("SIGTERM: %v", err)
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("server exit after SIGTERM: %v", err)
			}
			break
		}
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(round), uint64(w)))
				for seq := 0; ; seq++ {
					var pts []*qdrant.PointStruct
					batch := map[uint64]ackedPoint{}
					for k := 0; k < 8; k++ {
						id := uint64(round)<<32 | uint64(w)<<24 | uint64(seq*8+k)
						v := randVec(r, dim)
						p := qdrant.NewValueMap(map[string]any{"round": int64(round), "w": int64(w), "seq": int64(seq), "doc": map[string]any{"tags": []any{"x", int64(k)}}})
						batch[id] = ackedPoint{v, p}
						pts = append(pts, &qdrant.PointStruct{Id: qdrant.NewIDNum(id), Vectors: qdrant.NewVectorsDense(v), Payload: p})
					}
					if _, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: coll, Wait: wait(), Points: pts}); err != nil {
						return // the server was killed
					}
					mu.Lock()
					for id, p := range batch {
						acked[id] = p
					}
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(300+rand.IntN(400)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("SIGKILL: %v", err)
		}
		wg.Wait()
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("server wait: %v", err)
		}
		c.Close()
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		t.Logf("round %d: %d acknowledged points so far", round, n)
	}
	if len(acked) == 0 {
		t.Fatal("no upsert was acknowledged")
	}
}

func verifyAcked(t *testing.T, c *qdrant.Client, coll string, acked map[uint64]ackedPoint) {
	t.Helper()
	ids := make([]*qdrant.PointId, 0, len(acked))
	for id := range acked {
		ids = append(ids, qdrant.NewIDNum(id))
	}
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		got, err := c.Get(context.Background(), &qdrant.GetPoints{CollectionName: coll, Ids: chunk, WithPayload: qdrant.NewWithPayload(true), WithVectors: qdrant.NewWithVectors(true)})
		if err != nil {
			t.Fatalf("Get after restart: %v", err)
		}
		if len(got) != len(chunk) {
			t.Fatalf("after restart: %d of %d acknowledged points are back", len(got), len(chunk))
		}
		for _, p := range got {
			want := acked[p.GetId().GetNum()]
			if fmt.Sprint(p.GetVectors().GetVector().GetDenseVector().GetData()) != fmt.Sprint(want.vec) {
				t.Fatalf("point %d vector = %v, want %v", p.GetId().GetNum(), p.GetVectors().GetVector().GetDenseVector().GetData(), want.vec)
			}
			if !proto.Equal(&qdrant.Struct{Fields: p.GetPayload()}, &qdrant.Struct{Fields: want.payload}) {
				t.Fatalf("point %d payload = %v, want %v", p.GetId().GetNum(), p.GetPayload(), want.payload)
			}
		}
	}
}

// verifySearch checks that index-backed search agrees with exact search
// after a restart: a graph that lost track of its points would drop recall.
func verifySearch(t *testing.T, c *qdrant.Client, coll string, dim, n int) {
	t.Helper()
	if n < 100 {
		return
	}
	r := rand.New(rand.NewPCG(uint64(n), 5))
	found, total := 0, 0
	for i := 0; i < 10; i++ {
		q := randVec(r, dim)
		approx, err := c.Query(context.Background(), &qdrant.QueryPoints{CollectionName: coll, Query: qdrant.NewQueryDense(q)})
		if err != nil {
			t.Fatalf("Query after restart: %v", err)
		}
		exact, err := c.Query(context.Background(), &qdrant.QueryPoints{CollectionName: coll, Query: qdrant.NewQueryDense(q), Params: &qdrant.SearchParams{Exact: qdrant.PtrOf(true)}})
		if err != nil {
			t.Fatalf("exact Query after restart: %v", err)
		}
		want := map[uint64]bool{}
		for _, p := range exact {
			want[p.GetId().GetNum()] = true
		}
		for _, p := range approx {
			if want[p.GetId().GetNum()] {
				found++
			}
		}
		total += len(exact)
	}
	if recall := float64(found) / float64(total); recall < 0.8 {
		t.Errorf("after restart: recall@10 of indexed search = %.2f, want >= 0.8", recall)
	}
}
