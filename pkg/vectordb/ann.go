package vectordb

import (
	"runtime"
	"sync"

	"github.com/qdrant/go-client/qdrant"

	"github.com/tributary-rag/tributary/pkg/hnsw"
)

// Default HNSW parameters: Qdrant's default m and a larger ef_construct for
// the recall target. A collection's hnsw_config overrides them.
const (
	hnswM              = 16
	hnswEfConstruction = 200
)

// hnswANN adapts pkg/hnsw to annIndex. The HNSW index never reuses an id,
// while the store reuses slots, so each (re)insertion gets a fresh node id
// and the old node is tombstoned. Add and Remove run under the collection's
// write lock and Search under its read lock, so the maps need no lock of
// their own.
type hnswANN struct {
	ix     *hnsw.Index
	slotOf []uint32          // node → slot
	nodeOf map[uint32]uint32 // slot → live node
	broken bool              // node ids ran out; searches fall back to exact
}

// newANNIndex builds an empty HNSW index for a dense space, or nil for
// distances the index does not serve (Manhattan).
func newANNIndex(dim int, dist qdrant.Distance, m, efConstruct int) annIndex {
	var metric hnsw.Metric
	switch dist {
	case qdrant.Distance_Cosine:
		metric = hnsw.Cosine
	case qdrant.Distance_Dot:
		metric = hnsw.Dot
	case qdrant.Distance_Euclid:
		metric = hnsw.L2
	default:
		return nil
	}
	ix, err := hnsw.New(dim, metric, hnsw.M(m), hnsw.EfConstruction(efConstruct))
	if err != nil {
		return nil
	}
	return &hnswANN{ix: ix, nodeOf: map[uint32]uint32{}}
}

func (a *hnswANN) Add(slot uint32, v []float32) { a.AddBatch([]uint32{slot}, [][]float32{v}) }

// AddBatch inserts vectors in parallel across cores.
func (a *hnswANN) AddBatch(slots []uint32, vecs [][]float32) {
	nodes := make([]uint32, len(slots))
	for i, slot := range slots {
		a.Remove(slot)
		node := uint32(len(a.slotOf))
		if node > hnsw.MaxID {
			a.broken = true
			return
		}
		a.slotOf = append(a.slotOf, slot)
		a.nodeOf[slot] = node
		nodes[i] = node
	}
	workers := min(runtime.GOMAXPROCS(0), len(slots))
	if workers <= 1 {
		for i := range slots {
			if err := a.ix.Add(nodes[i], vecs[i]); err != nil {
				a.broken = true
			}
		}
		return
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(slots) {
					return
				}
				if err := a.ix.Add(nodes[i], vecs[i]); err != nil {
					mu.Lock()
					a.broken = true
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
}

func (a *hnswANN) Remove(slot uint32) {
	if node, ok := a.nodeOf[slot]; ok {
		a.ix.Delete(node)
		delete(a.nodeOf, slot)
	}
}

func (a *hnswANN) Search(q []float32, k, ef int, accept func(slot uint32) bool) []uint32 {
	if a.broken {
		return nil
	}
	var allow func(uint32) bool
	if accept != nil {
		allow = func(node uint32) bool { return accept(a.slotOf[node]) }
	}
	res := a.ix.Search(q, k, ef, allow)
	out := make([]uint32, len(res))
	for i, r := range res {
		out[i] = a.slotOf[r.ID]
	}
	return out
}

// Stats reports live and tombstoned nodes.
func (a *hnswANN) Stats() (live, deleted int) {
	st := a.ix.Stats()
	return a.ix.Len(), st.Deleted
}
