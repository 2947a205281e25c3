package vectordb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

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
// and the old node is tombstoned. Assign and Remove run under the
// collection's write lock and Search under its read lock, so the maps need
// no lock of their own; Insert touches only the HNSW index, which is safe
// for concurrent use, and runs after the write lock is released so that
// readers are not blocked while the graph grows. A node is valid only while
// it is its slot's current node: Search rejects stale ones (a node whose
// slot was re-upserted or deleted before its insertion finished).
type hnswANN struct {
	ix     *hnsw.Index
	slotOf []uint32          // node → slot
	nodeOf map[uint32]uint32 // slot → current node
	broken atomic.Bool       // an insertion failed; searches fall back to exact
}

// newANNIndex builds an empty HNSW index for a dense space, or nil for
// distances the index does not serve (Manhattan).
func newANNIndex(dim int, dist qdrant.Distance, m, efConstruct int, quantile float32) annIndex {
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
	opts := []hnsw.Option{hnsw.M(m), hnsw.EfConstruction(efConstruct)}
	if quantile > 0 {
		opts = append(opts, hnsw.ScalarInt8(quantile))
	}
	ix, err := hnsw.New(dim, metric, opts...)
	if err != nil {
		return nil
	}
	return &hnswANN{ix: ix, nodeOf: map[uint32]uint32{}}
}

func (a *hnswANN) AddBatch(slots []uint32, vecs [][]float32) {
	a.Insert(a.Assign(slots), vecs)
}

func (a *hnswANN) Assign(slots []uint32) []uint32 {
	nodes := make([]uint32, len(slots))
	for i, slot := range slots {
		a.Remove(slot)
		node := uint32(len(a.slotOf))
		if len(a.slotOf) > hnsw.MaxID {
			a.broken.Store(true)
			return nil
		}
		a.slotOf = append(a.slotOf, slot)
		a.nodeOf[slot] = node
		nodes[i] = node
	}
	return nodes
}

// Insert adds vectors under assigned nodes, in parallel across cores.
func (a *hnswANN) Insert(nodes []uint32, vecs [][]float32) {
	if len(nodes) != len(vecs) {
		return
	}
	workers := min(runtime.GOMAXPROCS(0), len(nodes))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(nodes) {
					return
				}
				if err := a.ix.Add(nodes[i], vecs[i]); err != nil {
					a.broken.Store(true)
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
	if a.broken.Load() {
		return nil
	}
	allow := func(node uint32) bool {
		slot := a.slotOf[node]
		if cur, ok := a.nodeOf[slot]; !ok || cur != node {
			return false // stale node
		}
		return accept == nil || accept(slot)
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

// noSlot marks a node whose point no longer exists.
const noSlot = ^uint32(0)

// persist writes, for every node, the id of the point it currently stands
// for (slots are not stable across a reload, ids are), then the graph.
// Caller holds the collection lock and no insertion runs.
func (a *hnswANN) persist(w io.Writer, points []point) error {
	if a.broken.Load() {
		return errors.New("index is broken")
	}
	buf := binary.LittleEndian.AppendUint32(nil, uint32(len(a.slotOf)))
	for node, slot := range a.slotOf {
		if cur, ok := a.nodeOf[slot]; !ok || cur != uint32(node) || !points[slot].live {
			buf = append(buf, 0)
			continue
		}
		id := points[slot].id
		if id.isUUID {
			buf = append(buf, 2)
			buf = append(buf, id.u[:]...)
		} else {
			buf = append(buf, 1)
			buf = binary.LittleEndian.AppendUint64(buf, id.num)
		}
	}
	if _, err := w.Write(buf); err != nil {
		return err
	}
	_, err := a.ix.WriteTo(w)
	return err
}

// loadANN reads what persist wrote, maps point ids to the reloaded slots and
// checks the result against the space: every slot with a vector must have
// exactly one live node.
func loadANN(data []byte, d *denseSpace, slots map[pointID]uint32) (*hnswANN, error) {
	if len(data) < 4 {
		return nil, errors.New("short ann record")
	}
	n := int(binary.LittleEndian.Uint32(data))
	data = data[4:]
	if n < 0 || n > len(data) {
		return nil, errors.New("bad ann node count")
	}
	a := &hnswANN{slotOf: make([]uint32, n), nodeOf: map[uint32]uint32{}}
	for node := range a.slotOf {
		if len(data) < 1 {
			return nil, errors.New("short ann node table")
		}
		kind := data[0]
		data = data[1:]
		var id pointID
		switch kind {
		case 0:
			a.slotOf[node] = noSlot
			continue
		case 1:
			if len(data) < 8 {
				return nil, errors.New("short ann node table")
			}
			id.num = binary.LittleEndian.Uint64(data)
			data = data[8:]
		case 2:
			if len(data) < 16 {
				return nil, errors.New("short ann node table")
			}
			id.isUUID = true
			copy(id.u[:], data)
			data = data[16:]
		default:
			return nil, fmt.Errorf("bad ann node kind %d", kind)
		}
		slot, ok := slots[id]
		if !ok || !d.present[slot] {
			return nil, fmt.Errorf("ann node %d stands for point %s, which has no vector", node, id)
		}
		if _, dup := a.nodeOf[slot]; dup {
			return nil, fmt.Errorf("point %s has two ann nodes", id)
		}
		a.slotOf[node] = slot
		a.nodeOf[slot] = uint32(node)
	}
	ix, err := hnsw.Load(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if ix.Dim() != d.dim {
		return nil, fmt.Errorf("ann dimension %d, space has %d", ix.Dim(), d.dim)
	}
	a.ix = ix
	for node, slot := range a.slotOf {
		if slot == noSlot {
			ix.Delete(uint32(node)) // a stale node must never surface
		} else if !ix.Contains(uint32(node)) {
			return nil, fmt.Errorf("ann node %d is missing from the graph", node)
		}
	}
	if len(a.nodeOf) != d.count {
		return nil, fmt.Errorf("ann holds %d points, space has %d", len(a.nodeOf), d.count)
	}
	return a, nil
}
