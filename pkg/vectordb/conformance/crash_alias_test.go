package conformance

import (
	"context"
	"errors"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qdrant/go-client/qdrant"

	"github.com/tributary-rag/tributary/pkg/vectordb"
)

// TestCrashDuringAliasSwitchAndSnapshot kills the server (SIGKILL) while
// one client keeps moving an alias between two collections and another
// keeps creating collection snapshots. After each kill the alias points at
// the last acknowledged target or the one whose switch was in flight, never
// nowhere; every snapshot the store lists restores completely.
func TestCrashDuringAliasSwitchAndSnapshot(t *testing.T) {
	if !target.embedded {
		t.Skip("kills the embedded store; it cannot kill the server at QDRANT_ADDR")
	}
	ctx := context.Background()
	dir := t.TempDir()
	const rounds = 3
	for round := 0; round < rounds; round++ {
		cmd, c := startCrashServer(t, dir)
		if round == 0 {
			for _, name := range []string{"alias_a", "alias_b"} {
				if err := c.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: name,
					VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 4, Distance: qdrant.Distance_Dot})}); err != nil {
					t.Fatal(err)
				}
				var pts []*qdrant.PointStruct
				for i := range 200 {
					pts = append(pts, &qdrant.PointStruct{Id: qdrant.NewIDNum(uint64(i)), Vectors: qdrant.NewVectors(1, 2, 3, float32(i)),
						Payload: qdrant.NewValueMap(map[string]any{"coll": name})})
				}
				if _, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: name, Points: pts, Wait: wait()}); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.CreateAlias(ctx, "live", "alias_a"); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		acked, inflight := "", ""
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				next := []string{"alias_a", "alias_b"}[i%2]
				mu.Lock()
				inflight = next
				mu.Unlock()
				_, err := c.GetCollectionsClient().UpdateAliases(ctx, &qdrant.ChangeAliases{Actions: []*qdrant.AliasOperations{
					qdrant.NewAliasDelete("live"), qdrant.NewAliasCreate("live", next),
				}})
				if err != nil {
					return // killed
				}
				mu.Lock()
				acked = next
				mu.Unlock()
			}
		}()
		go func() {
			defer wg.Done()
			for {
				if _, err := c.CreateSnapshot(ctx, "alias_a"); err != nil {
					return
				}
			}
		}()
		time.Sleep(time.Duration(200+rand.IntN(300)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("SIGKILL: %v", err)
		}
		wg.Wait()
		var ee *exec.ExitError
		if err := cmd.Wait(); !errors.As(err, &ee) {
			t.Fatalf("server wait: %v", err)
		}
		c.Close()

		// Open the data directory directly: the alias and the snapshots.
		s, err := vectordb.Open(filepath.Join(dir, "data"))
		if err != nil {
			t.Fatalf("reopen after SIGKILL: %v", err)
		}
		as, err := s.ListAliases(ctx, "")
		if err != nil || len(as) != 1 || as[0].GetAliasName() != "live" {
			t.Fatalf("round %d: aliases after SIGKILL = %v, %v; want live only", round, as, err)
		}
		mu.Lock()
		if got := as[0].GetCollectionName(); got != acked && got != inflight {
			t.Errorf("round %d: live -> %s, want %q (acknowledged) or %q (in flight)", round, got, acked, inflight)
		}
		mu.Unlock()
		snaps, err := s.ListSnapshots(ctx, "alias_a")
		if err != nil || len(snaps) == 0 {
			t.Fatalf("round %d: snapshots = %v, %v", round, snaps, err)
		}
		for _, sn := range snaps {
			path := filepath.Join(dir, "data", "snapshots", "collections", "alias_a", sn.GetName())
			if err := s.RestoreSnapshot(ctx, path, "restored"); err != nil {
				t.Errorf("round %d: snapshot %s does not restore: %v", round, sn.GetName(), err)
			}
		}
		if n, err := s.Count(ctx, &qdrant.CountPoints{CollectionName: "restored"}); err != nil || n != 200 {
			t.Errorf("round %d: restored %d points, %v; want 200", round, n, err)
		}
		if _, err := s.DeleteCollection(ctx, "restored"); err != nil {
			t.Fatal(err)
		}
		// Keep the directory small for the next round.
		for _, sn := range snaps {
			_ = s.DeleteSnapshot(ctx, "alias_a", sn.GetName())
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d snapshots listed after the kill, alias -> %s", round, len(snaps), as[0].GetCollectionName())
	}
}
