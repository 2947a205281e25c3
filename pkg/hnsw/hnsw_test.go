package hnsw

import (
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tributary-rag/tributary/pkg/vecmath"
)

// clustered returns n normalised vectors drawn from a mixture of Gaussian
// clusters, the shape of real embedding sets (uniform random data is far
// easier and hides bugs in neighbour selection).
func clustered(r *rand.Rand, n, dim, clusters int, spread float64) [][]float32 {
	centers := make([][]float32, clusters)
	for i := range centers {
		centers[i] = make([]float32, dim)
		for j := range centers[i] {
			centers[i][j] = float32(r.NormFloat64())
		}
	}
	out := make([][]float32, n)
	for i := range out {
		c := centers[r.IntN(clusters)]
		v := make([]float32, dim)
		for j := range v {
			v[j] = c[j] + float32(spread*r.NormFloat64())
		}
		vecmath.Normalize(v)
		out[i] = v
	}
	return out
}

func build(t testing.TB, vecs [][]float32, metric Metric, opts ...Option) *Index {
	t.Helper()
	ix, err := New(len(vecs[0]), metric, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// Two writers: the build itself exercises concurrent inserts.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(vecs); i += 2 {
				if err := ix.Add(uint32(i), vecs[i]); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("Add: %v", err)
		}
	}
	return ix
}

// recall returns the fraction of the exact top-k ids that got contains.
func recall(got, exact []Result) float64 {
	if len(exact) == 0 {
		return 1
	}
	in := make(map[uint32]bool, len(got))
	for _, r := range got {
		in[r.ID] = true
	}
	hit := 0
	for _, r := range exact {
		if in[r.ID] {
			hit++
		}
	}
	return float64(hit) / float64(len(exact))
}

// TestRecallAndFilter builds one 10k clustered cosine index (the expensive
// part under -race) and checks plain and filtered recall against exact search,
// then a smaller L2 index.
func TestRecallAndFilter(t *testing.T) {
	const n, dim, nq, k, ef = 10000, 32, 100, 10, 40
	r := rand.New(rand.NewPCG(1, 1))
	data := clustered(r, n+nq, dim, 50, 0.35)
	vecs, queries := data[:n], data[n:]
	ix := build(t, vecs, Cosine, M(16), EfConstruction(48), Seed(7))
	if ix.Len() != n {
		t.Fatalf("Len() = %d, want %d", ix.Len(), n)
	}
	tests := []struct {
		name  string
		allow func(id uint32) bool
		nq    int // queries; filtered searches at 1% walk far more nodes
		want  float64
	}{
		{"all", nil, nq, 0.98},
		// 1%: ids whose hash falls in the lowest percentile, so the allowed
		// points are spread over all clusters.
		{"1%", func(id uint32) bool { return mix32(id)%100 == 0 }, 25, 0.99},
		{"50%", func(id uint32) bool { return mix32(id)%2 == 0 }, 50, 0.98},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sum float64
			for _, q := range queries[:tt.nq] {
				got := ix.Search(q, k, ef, tt.allow)
				exact := ix.SearchExact(q, k, tt.allow)
				if len(got) != len(exact) || len(got) != k {
					t.Fatalf("Search returned %d results, exact %d, want %d", len(got), len(exact), k)
				}
				for i, res := range got {
					if tt.allow != nil && !tt.allow(res.ID) {
						t.Fatalf("filtered Search returned excluded id %d", res.ID)
					}
					if i > 0 && got[i-1].Score < res.Score {
						t.Fatalf("results not sorted best first: %v", got)
					}
				}
				sum += recall(got, exact)
			}
			if rec := sum / float64(tt.nq); rec < tt.want {
				t.Errorf("recall@%d at ef %d = %.4f, want >= %.2f", k, ef, rec, tt.want)
			} else {
				t.Logf("recall@%d at ef %d = %.4f", k, ef, rec)
			}
		})
	}
	// A filter that accepts nothing returns nothing; one that accepts a
	// single point finds it.
	if got := ix.Search(queries[0], k, ef, func(uint32) bool { return false }); len(got) != 0 {
		t.Errorf("Search(allow none) = %v, want empty", got)
	}
	got := ix.Search(queries[0], k, ef, func(id uint32) bool { return id == 4242 })
	if len(got) != 1 || got[0].ID != 4242 {
		t.Errorf("Search(allow one) = %v, want id 4242", got)
	}
}

func TestRecallL2(t *testing.T) {
	const n, dim, nq, k, ef = 2000, 32, 50, 10, 64
	r := rand.New(rand.NewPCG(2, 1))
	data := clustered(r, n+nq, dim, 30, 0.35)
	for _, v := range data {
		// Unnormalised: scale so that L2 and cosine rankings differ.
		s := float32(1 + r.Float64())
		for j := range v {
			v[j] *= s
		}
	}
	ix := build(t, data[:n], L2, M(12), EfConstruction(64), Seed(7))
	var sum float64
	for _, q := range data[n:] {
		got := ix.Search(q, k, ef, nil)
		for i := 1; i < len(got); i++ {
			if got[i-1].Score > got[i].Score {
				t.Fatalf("L2 results not sorted by ascending distance: %v", got)
			}
		}
		sum += recall(got, ix.SearchExact(q, k, nil))
	}
	if rec := sum / nq; rec < 0.98 {
		t.Errorf("L2 recall@%d at ef %d = %.4f, want >= 0.98", k, ef, rec)
	}
}

func TestScores(t *testing.T) {
	vecs := [][]float32{{1, 0}, {0, 1}, {0.6, 0.8}, {-1, 0}}
	q := []float32{1, 0}
	tests := []struct {
		metric Metric
		want   []Result
	}{
		{Cosine, []Result{{0, 1}, {2, 0.6}, {1, 0}, {3, -1}}},
		{Dot, []Result{{0, 1}, {2, 0.6}, {1, 0}, {3, -1}}},
		{L2, []Result{{0, 0}, {2, float32(math.Sqrt(0.16 + 0.64))}, {1, float32(math.Sqrt2)}, {3, 2}}},
	}
	for _, tt := range tests {
		ix, err := New(2, tt.metric)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vecs {
			if err := ix.Add(uint32(i), v); err != nil {
				t.Fatal(err)
			}
		}
		for name, got := range map[string][]Result{
			"Search":      ix.Search(q, 4, 0, nil),
			"SearchExact": ix.SearchExact(q, 4, nil),
		} {
			if len(got) != len(tt.want) {
				t.Fatalf("%s %v = %v, want %v", name, tt.metric, got, tt.want)
			}
			for i := range got {
				if got[i].ID != tt.want[i].ID || math.Abs(float64(got[i].Score-tt.want[i].Score)) > 1e-6 {
					t.Errorf("%s %v = %v, want %v", name, tt.metric, got, tt.want)
					break
				}
			}
		}
	}
}

func TestAddErrors(t *testing.T) {
	ix, err := New(3, Cosine)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Add(5, []float32{1, 0, 0}); err != nil {
		t.Fatalf("Add(5) = %v", err)
	}
	tests := []struct {
		name string
		id   uint32
		vec  []float32
		want error
	}{
		{"duplicate", 5, []float32{0, 1, 0}, ErrExists},
		{"short", 6, []float32{1, 0}, ErrDimension},
		{"long", 6, []float32{1, 0, 0, 0}, ErrDimension},
		{"range", MaxID + 1, []float32{1, 0, 0}, ErrIDRange},
	}
	for _, tt := range tests {
		if err := ix.Add(tt.id, tt.vec); !errors.Is(err, tt.want) {
			t.Errorf("Add(%s) = %v, want %v", tt.name, err, tt.want)
		}
	}
	ix.Delete(5)
	if err := ix.Add(5, []float32{1, 0, 0}); !errors.Is(err, ErrExists) {
		t.Errorf("Add(deleted id) = %v, want %v", err, ErrExists)
	}
	if got := ix.Search([]float32{1, 0}, 1, 0, nil); got != nil {
		t.Errorf("Search(wrong dim) = %v, want nil", got)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name   string
		dim    int
		metric Metric
		opts   []Option
	}{
		{"zero dim", 0, Cosine, nil},
		{"bad metric", 4, Metric(0), nil},
		{"m too small", 4, Cosine, []Option{M(1)}},
		{"ef zero", 4, Cosine, []Option{EfConstruction(0)}},
		{"ef search zero", 4, Cosine, []Option{EfSearch(0)}},
	}
	for _, tt := range tests {
		if _, err := New(tt.dim, tt.metric, tt.opts...); err == nil {
			t.Errorf("New(%s) succeeded, want error", tt.name)
		}
	}
}

func TestEmptyAndSparseIDs(t *testing.T) {
	ix, err := New(4, L2)
	if err != nil {
		t.Fatal(err)
	}
	if got := ix.Search([]float32{1, 2, 3, 4}, 3, 0, nil); got != nil {
		t.Errorf("Search(empty) = %v, want nil", got)
	}
	ids := []uint32{3000, 7, 1 << 20}
	for i, id := range ids {
		if err := ix.Add(id, []float32{float32(i), 0, 0, 0}); err != nil {
			t.Fatalf("Add(%d) = %v", id, err)
		}
	}
	got := ix.Search([]float32{2, 0, 0, 0}, 5, 0, nil)
	want := []uint32{1 << 20, 7, 3000}
	if len(got) != len(want) {
		t.Fatalf("Search = %v, want ids %v", got, want)
	}
	for i := range want {
		if got[i].ID != want[i] {
			t.Errorf("Search = %v, want ids %v", got, want)
		}
	}
	if ix.Delete(99) || ix.Delete(1<<30) {
		t.Errorf("Delete of an absent id reported true")
	}
}

func TestDelete(t *testing.T) {
	const n, dim, k = 2000, 16, 10
	r := rand.New(rand.NewPCG(2, 2))
	data := clustered(r, n+50, dim, 20, 0.3)
	ix := build(t, data[:n], Cosine, EfConstruction(64), Seed(3))
	// Delete every third point, then check no deleted id comes back and
	// recall against the exact search over live points stays high.
	for i := 0; i < n; i += 3 {
		if !ix.Delete(uint32(i)) {
			t.Fatalf("Delete(%d) = false, want true", i)
		}
	}
	if ix.Delete(0) {
		t.Errorf("second Delete(0) = true, want false")
	}
	if want := n - (n+2)/3; ix.Len() != want {
		t.Errorf("Len() = %d, want %d", ix.Len(), want)
	}
	if st := ix.Stats(); st.Deleted != (n+2)/3 {
		t.Errorf("Stats().Deleted = %d, want %d", st.Deleted, (n+2)/3)
	}
	var sum float64
	for _, q := range data[n:] {
		got := ix.Search(q, k, 64, nil)
		for _, res := range got {
			if res.ID%3 == 0 {
				t.Fatalf("Search returned deleted id %d", res.ID)
			}
		}
		for _, res := range ix.SearchExact(q, k, nil) {
			if res.ID%3 == 0 {
				t.Fatalf("SearchExact returned deleted id %d", res.ID)
			}
		}
		sum += recall(got, ix.SearchExact(q, k, nil))
	}
	if rec := sum / 50; rec < 0.95 {
		t.Errorf("recall after deletes = %.3f, want >= 0.95", rec)
	}
	if ix.Contains(3) || !ix.Contains(4) || ix.Vector(3) != nil || len(ix.Vector(4)) != dim {
		t.Errorf("Contains/Vector disagree with deletes")
	}
}

func mix32(id uint32) uint32 {
	x := id*0x9e3779b1 + 0x7f4a7c15
	x ^= x >> 16
	x *= 0x85ebca6b
	x ^= x >> 13
	return x
}

// TestConcurrentAddSearchDelete runs searches while writers add and delete;
// run with -race. Searches must never return an id that was never added, and
// once the writers finish no deleted id may appear and every live point must
// be findable.
func TestConcurrentAddSearchDelete(t *testing.T) {
	const n, dim = 2000, 16
	r := rand.New(rand.NewPCG(6, 6))
	data := clustered(r, n, dim, 20, 0.3)
	ix, err := New(dim, Cosine, M(8), EfConstruction(64))
	if err != nil {
		t.Fatal(err)
	}
	var (
		writers, searchers sync.WaitGroup
		mu                 sync.Mutex
		failures           []string
	)
	fail := func(s string) {
		mu.Lock()
		failures = append(failures, s)
		mu.Unlock()
	}
	done := make(chan struct{})
	for w := range 3 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := w; i < n; i += 3 {
				if err := ix.Add(uint32(i), data[i]); err != nil {
					fail(err.Error())
					return
				}
				// Multiples of 7 are deleted right after they are added.
				if i%7 == 0 && !ix.Delete(uint32(i)) {
					fail("Delete of a just-added id returned false")
				}
			}
		}()
	}
	var searches atomic.Int64
	for s := range 3 {
		searchers.Add(1)
		go func() {
			defer searchers.Done()
			q := make([]float32, dim)
			rr := rand.New(rand.NewPCG(uint64(s), 9))
			for {
				select {
				case <-done:
					return
				default:
				}
				copy(q, data[rr.IntN(n)])
				for _, res := range ix.Search(q, 10, 32, nil) {
					if res.ID >= n {
						fail("Search returned an id that was never added")
					}
				}
				searches.Add(1)
			}
		}()
	}
	writers.Wait()
	close(done)
	searchers.Wait()
	if len(failures) > 0 {
		t.Fatal(failures[0])
	}
	if searches.Load() == 0 {
		t.Fatal("no search ran concurrently with the writers")
	}
	wantLive := n - (n+6)/7
	if ix.Len() != wantLive {
		t.Fatalf("Len() = %d, want %d", ix.Len(), wantLive)
	}
	// Every node, live or tombstoned, must be reachable from the entry point
	// on level 0. Before inserts chose all their levels' neighbours ahead of
	// linking, a node reached through an upper level before its lower lists
	// existed cut concurrent inserts off (0-3 unreachable nodes per run).
	if lost := unreachable(ix); len(lost) > 0 {
		t.Errorf("%d nodes unreachable from the entry point, e.g. %d", len(lost), lost[0])
	}
	missed := 0
	for i := 0; i < n; i++ {
		got := ix.Search(data[i], 10, 64, nil)
		for _, res := range got {
			if res.ID%7 == 0 {
				t.Fatalf("Search returned deleted id %d", res.ID)
			}
		}
		if i%7 != 0 && (len(got) == 0 || (got[0].ID != uint32(i) && got[0].Score < 0.9999)) {
			missed++
		}
	}
	if missed > n/500 {
		t.Errorf("%d of %d live points not found as their own nearest neighbour", missed, wantLive)
	}
}

// unreachable returns the present nodes that a walk of level 0 from the entry
// point does not reach.
func unreachable(ix *Index) []uint32 {
	e := ix.entry.Load()
	if e == 0 {
		return nil
	}
	ep, _ := unpackEntry(e)
	seen := map[uint32]bool{ep: true}
	for stack := []uint32{ep}; len(stack) > 0; {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		list := ix.links(id, 0)
		for _, nb := range list[1 : 1+list[0]] {
			if !seen[nb] {
				seen[nb] = true
				stack = append(stack, nb)
			}
		}
	}
	var lost []uint32
	for si, seg := range *ix.segs.Load() {
		for off := range seg.state {
			id := uint32(si)<<segBits | uint32(off)
			if seg.state[off].Load()&statePresent != 0 && !seen[id] {
				lost = append(lost, id)
			}
		}
	}
	return lost
}

// TestConcurrentInsertsStayReachable builds the same data with eight writers
// under several seeds; every node must stay reachable. An insert that linked
// a node on an upper level before writing the node's lower lists left 1-2
// nodes unreachable in 4 of 10 such builds; with that fixed, pruning that
// removed a node's last in-link still did in about 1 of 25.
func TestConcurrentInsertsStayReachable(t *testing.T) {
	const n, dim, writers = 2000, 16, 8
	r := rand.New(rand.NewPCG(6, 6))
	data := clustered(r, n, dim, 20, 0.3)
	for seed := range uint64(10) {
		ix, err := New(dim, Cosine, M(8), EfConstruction(32), Seed(seed))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += writers {
					if err := ix.Add(uint32(i), data[i]); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if lost := unreachable(ix); len(lost) > 0 {
			t.Errorf("seed %d: %d of %d nodes unreachable from the entry point, e.g. %d", seed, len(lost), n, lost[0])
		}
	}
}

// TestSmallMStaysReachable: with M=4 the heuristic prunes hard, and before
// pruned nodes were rehomed every build of this data left 5-25 of 2000 nodes
// without an in-link. The build is sequential, so the result is exact.
func TestSmallMStaysReachable(t *testing.T) {
	const n, dim = 2000, 16
	data := clustered(rand.New(rand.NewPCG(6, 6)), n, dim, 20, 0.3)
	for seed := range uint64(3) {
		ix, err := New(dim, Cosine, M(4), EfConstruction(32), Seed(seed))
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range data {
			if err := ix.Add(uint32(i), v); err != nil {
				t.Fatal(err)
			}
		}
		if lost := unreachable(ix); len(lost) > 0 {
			t.Errorf("seed %d: %d of %d nodes unreachable from the entry point, e.g. %d", seed, len(lost), n, lost[0])
		}
		in := inLinks(ix, n)
		for id := range uint32(n) {
			if got := ix.indeg(id).Load(); got != in[id] {
				t.Fatalf("seed %d: node %d counts %d in-links, has %d", seed, id, got, in[id])
			}
		}
	}
}

// inLinks counts, for ids below n, the level-0 lists that link to each.
func inLinks(ix *Index, n int) []int32 {
	in := make([]int32, n)
	for id := range uint32(n) {
		list := ix.links(id, 0)
		for _, nb := range list[1 : 1+list[0]] {
			in[nb]++
		}
	}
	return in
}
