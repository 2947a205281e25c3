package vectordb

import (
	"math"

	"github.com/qdrant/go-client/qdrant"
)

// parseScalar returns the quantile of an int8 scalar quantization (1 when
// unset, i.e. the full range of each vector).
func parseScalar(s *qdrant.ScalarQuantization) (float32, error) {
	if s.GetType() != qdrant.QuantizationType_Int8 {
		return 0, invalidf("scalar quantization type must be int8")
	}
	q := float32(1)
	if s.Quantile != nil {
		q = s.GetQuantile()
		if !(q >= 0.5 && q <= 1) {
			return 0, invalidf("quantile must be between 0.5 and 1, got %v", q)
		}
		q = max(q, 0.5001) // the index takes (0.5, 1]
	}
	return q, nil
}

// parseQuantization returns the int8 quantile of a quantization config, 0
// for none. Product and binary quantization are not implemented.
func parseQuantization(q *qdrant.QuantizationConfig) (float32, error) {
	switch v := q.GetQuantization().(type) {
	case nil:
		return 0, nil
	case *qdrant.QuantizationConfig_Scalar:
		return parseScalar(v.Scalar)
	case *qdrant.QuantizationConfig_Product:
		return 0, unimplementedf("product quantization")
	default:
		return 0, unimplementedf("binary quantization")
	}
}

// parseQuantizationDiff is parseQuantization for an update; keep reports
// that the diff leaves the setting as it is.
func parseQuantizationDiff(q *qdrant.QuantizationConfigDiff) (quantile float32, keep bool, err error) {
	switch v := q.GetQuantization().(type) {
	case nil:
		return 0, true, nil
	case *qdrant.QuantizationConfigDiff_Disabled:
		return 0, false, nil
	case *qdrant.QuantizationConfigDiff_Scalar:
		quantile, err = parseScalar(v.Scalar)
		return quantile, false, err
	case *qdrant.QuantizationConfigDiff_Product:
		return 0, false, unimplementedf("product quantization")
	default:
		return 0, false, unimplementedf("binary quantization")
	}
}

// diffToConfig turns an update's quantization into the create form kept
// in the collection's configuration (nil when disabled).
func diffToConfig(q *qdrant.QuantizationConfigDiff) *qdrant.QuantizationConfig {
	if s := q.GetScalar(); s != nil {
		return qdrant.NewQuantizationScalar(s)
	}
	return nil
}

// annCandidates is how many candidates a graph search of a quantized space
// fetches for limit results: limit × oversampling (default 1, at most 16),
// all rescored with the original vectors.
func annCandidates(d *denseSpace, limit int, qp *qdrant.QuantizationSearchParams) int {
	if d.quantile == 0 {
		return limit
	}
	over := 1.0
	if qp.Oversampling != nil {
		over = min(max(qp.GetOversampling(), 1), 16)
	}
	return int(math.Ceil(float64(limit) * over))
}
