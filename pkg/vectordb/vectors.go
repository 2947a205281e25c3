package vectordb

import (
	"math"
	"sort"

	"github.com/qdrant/go-client/qdrant"
)

// sparseVec is a sparse vector with strictly increasing indices.
type sparseVec struct {
	idx []uint32
	val []float32
}

// parsedVector is one vector of a point as sent by a client.
type parsedVector struct {
	dense  []float32
	sparse *sparseVec
}

// parseVector reads a vector in either the current oneof form or the
// deprecated data/indices form.
func parseVector(v *qdrant.Vector) (parsedVector, error) {
	if v == nil {
		return parsedVector{}, invalidf("vector is missing")
	}
	switch x := v.GetVector().(type) {
	case *qdrant.Vector_Dense:
		return parsedVector{dense: x.Dense.GetData()}, nil
	case *qdrant.Vector_Sparse:
		sv, err := newSparse(x.Sparse.GetIndices(), x.Sparse.GetValues())
		return parsedVector{sparse: sv}, err
	case nil:
		if v.GetIndices() != nil {
			sv, err := newSparse(v.GetIndices().GetData(), v.GetData())
			return parsedVector{sparse: sv}, err
		}
		if v.VectorsCount != nil {
			return parsedVector{}, unimplementedf("multi-vectors")
		}
		return parsedVector{dense: v.GetData()}, nil
	case *qdrant.Vector_MultiDense:
		return parsedVector{}, unimplementedf("multi-vectors")
	default:
		return parsedVector{}, unimplementedf("server-side inference (documents, images, objects)")
	}
}

// parseVectorInput reads a query vector.
func parseVectorInput(v *qdrant.VectorInput) (parsedVector, *qdrant.PointId, error) {
	switch x := v.GetVariant().(type) {
	case *qdrant.VectorInput_Dense:
		return parsedVector{dense: x.Dense.GetData()}, nil, nil
	case *qdrant.VectorInput_Sparse:
		sv, err := newSparse(x.Sparse.GetIndices(), x.Sparse.GetValues())
		return parsedVector{sparse: sv}, nil, err
	case *qdrant.VectorInput_Id:
		return parsedVector{}, x.Id, nil
	case nil:
		return parsedVector{}, nil, invalidf("query vector is empty")
	case *qdrant.VectorInput_MultiDense:
		return parsedVector{}, nil, unimplementedf("multi-vector queries")
	default:
		return parsedVector{}, nil, unimplementedf("server-side inference (documents, images, objects)")
	}
}

func newSparse(idx []uint32, val []float32) (*sparseVec, error) {
	if len(idx) != len(val) {
		return nil, invalidf("Sparse vector indices and values must have the same length: %d indices, %d values", len(idx), len(val))
	}
	for _, x := range val {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, invalidf("sparse vector holds a non-finite value")
		}
	}
	sv := &sparseVec{idx: append([]uint32(nil), idx...), val: append([]float32(nil), val...)}
	sort.Sort(sv)
	for i := 1; i < len(sv.idx); i++ {
		if sv.idx[i] == sv.idx[i-1] {
			return nil, invalidf("Sparse vector indices must be unique: index %d repeats", sv.idx[i])
		}
	}
	return sv, nil
}

func (s *sparseVec) Len() int           { return len(s.idx) }
func (s *sparseVec) Less(i, j int) bool { return s.idx[i] < s.idx[j] }
func (s *sparseVec) Swap(i, j int) {
	s.idx[i], s.idx[j] = s.idx[j], s.idx[i]
	s.val[i], s.val[j] = s.val[j], s.val[i]
}

// normalize returns v scaled to unit length, or v itself when its length is
// below float32 epsilon (as Qdrant does).
func normalize(v []float32) []float32 {
	var sum float32
	for _, x := range v {
		sum += x * x
	}
	n := float32(math.Sqrt(float64(sum)))
	if n < 1.1920929e-07 {
		return append([]float32(nil), v...)
	}
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = x / n
	}
	return out
}

func checkFinite(v []float32) error {
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return invalidf("vector holds a non-finite value")
		}
	}
	return nil
}

// idf is Qdrant's inverse document frequency for a sparse dimension that
// occurs in df of n points.
func idf(n, df int) float32 {
	fn, fdf := float64(n), float64(df)
	return float32(math.Log((fn-fdf+0.5)/(fdf+0.5) + 1))
}
