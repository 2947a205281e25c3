package vectordb

import (
	"strings"

	"github.com/qdrant/go-client/qdrant"
)

// predicate reports whether a point matches a filter.
type predicate func(id pointID, payload map[string]*qdrant.Value) bool

// compileFilter turns a Qdrant filter into a predicate. A nil or empty filter
// yields nil, which matches every point.
func compileFilter(f *qdrant.Filter) (predicate, error) {
	if f == nil || (len(f.GetMust()) == 0 && len(f.GetShould()) == 0 && len(f.GetMustNot()) == 0 && f.GetMinShould() == nil) {
		return nil, nil
	}
	return compileFilterNonNil(f, 0)
}

const maxFilterDepth = 64

func compileFilterNonNil(f *qdrant.Filter, depth int) (predicate, error) {
	if depth > maxFilterDepth {
		return nil, invalidf("filter is nested too deeply")
	}
	compileAll := func(cs []*qdrant.Condition) ([]predicate, error) {
		ps := make([]predicate, 0, len(cs))
		for _, c := range cs {
			p, err := compileCondition(c, depth+1)
			if err != nil {
				return nil, err
			}
			ps = append(ps, p)
		}
		return ps, nil
	}
	must, err := compileAll(f.GetMust())
	if err != nil {
		return nil, err
	}
	should, err := compileAll(f.GetShould())
	if err != nil {
		return nil, err
	}
	mustNot, err := compileAll(f.GetMustNot())
	if err != nil {
		return nil, err
	}
	var minShould []predicate
	var minCount uint64
	if ms := f.GetMinShould(); ms != nil {
		if minShould, err = compileAll(ms.GetConditions()); err != nil {
			return nil, err
		}
		minCount = ms.GetMinCount()
	}
	hasMin := f.GetMinShould() != nil
	return func(id pointID, payload map[string]*qdrant.Value) bool {
		for _, p := range must {
			if !p(id, payload) {
				return false
			}
		}
		for _, p := range mustNot {
			if p(id, payload) {
				return false
			}
		}
		if len(should) > 0 {
			ok := false
			for _, p := range should {
				if p(id, payload) {
					ok = true
					break
				}
			}
			if !ok {
				return false
			}
		}
		if hasMin {
			var n uint64
			for _, p := range minShould {
				if n >= minCount {
					break
				}
				if p(id, payload) {
					n++
				}
			}
			if n < minCount {
				return false
			}
		}
		return true
	}, nil
}

func compileCondition(c *qdrant.Condition, depth int) (predicate, error) {
	switch v := c.GetConditionOneOf().(type) {
	case *qdrant.Condition_Field:
		return compileField(v.Field)
	case *qdrant.Condition_IsEmpty:
		path, err := parseKeyPath(v.IsEmpty.GetKey())
		if err != nil {
			return nil, err
		}
		return func(_ pointID, payload map[string]*qdrant.Value) bool {
			return isEmptyValues(path.values(payload, nil))
		}, nil
	case *qdrant.Condition_IsNull:
		path, err := parseKeyPath(v.IsNull.GetKey())
		if err != nil {
			return nil, err
		}
		return func(_ pointID, payload map[string]*qdrant.Value) bool {
			return isNullValues(path.values(payload, nil))
		}, nil
	case *qdrant.Condition_HasId:
		set := make(map[pointID]struct{}, len(v.HasId.GetHasId()))
		for _, id := range v.HasId.GetHasId() {
			pid, err := parsePointID(id)
			if err != nil {
				return nil, err
			}
			set[pid] = struct{}{}
		}
		return func(id pointID, _ map[string]*qdrant.Value) bool {
			_, ok := set[id]
			return ok
		}, nil
	case *qdrant.Condition_Filter:
		if v.Filter == nil {
			return func(pointID, map[string]*qdrant.Value) bool { return true }, nil
		}
		return compileFilterNonNil(v.Filter, depth+1)
	case *qdrant.Condition_Nested:
		return compileNested(v.Nested, depth)
	case *qdrant.Condition_HasVector:
		return nil, unimplementedf("has_vector filter condition")
	default:
		return nil, invalidf("filter condition is empty")
	}
}

// compileNested matches when at least one object of the array at key
// satisfies the whole inner filter.
func compileNested(n *qdrant.NestedCondition, depth int) (predicate, error) {
	path, err := parseKeyPath(n.GetKey())
	if err != nil {
		return nil, err
	}
	if n.GetFilter() == nil {
		return nil, invalidf("nested condition has no filter")
	}
	inner, err := compileFilterNonNil(n.GetFilter(), depth+1)
	if err != nil {
		return nil, err
	}
	return func(id pointID, payload map[string]*qdrant.Value) bool {
		for _, v := range path.values(payload, nil) {
			elems := []*qdrant.Value{v}
			if l := v.GetListValue(); l != nil {
				elems = l.GetValues()
			}
			for _, e := range elems {
				if s := e.GetStructValue(); s != nil && inner(id, s.GetFields()) {
					return true
				}
			}
		}
		return false
	}, nil
}

// valueCheck tests one scalar payload value.
type valueCheck func(v *qdrant.Value) bool

func compileField(fc *qdrant.FieldCondition) (predicate, error) {
	path, err := parseKeyPath(fc.GetKey())
	if err != nil {
		return nil, err
	}
	if fc.GetGeoBoundingBox() != nil || fc.GetGeoRadius() != nil || fc.GetGeoPolygon() != nil {
		return nil, unimplementedf("geo filter conditions")
	}
	if fc.GetDatetimeRange() != nil {
		return nil, unimplementedf("datetime range filter condition")
	}
	var checks []predicate
	anyValue := func(vc valueCheck) predicate {
		return func(_ pointID, payload map[string]*qdrant.Value) bool {
			return anyElement(path.values(payload, nil), vc)
		}
	}
	if m := fc.GetMatch(); m != nil {
		switch mv := m.GetMatchValue().(type) {
		case *qdrant.Match_Keyword:
			kw := mv.Keyword
			checks = append(checks, anyValue(func(v *qdrant.Value) bool {
				s, ok := v.GetKind().(*qdrant.Value_StringValue)
				return ok && s.StringValue == kw
			}))
		case *qdrant.Match_Integer:
			n := mv.Integer
			checks = append(checks, anyValue(func(v *qdrant.Value) bool {
				i, ok := v.GetKind().(*qdrant.Value_IntegerValue)
				return ok && i.IntegerValue == n
			}))
		case *qdrant.Match_Boolean:
			b := mv.Boolean
			checks = append(checks, anyValue(func(v *qdrant.Value) bool {
				x, ok := v.GetKind().(*qdrant.Value_BoolValue)
				return ok && x.BoolValue == b
			}))
		case *qdrant.Match_Text:
			t := mv.Text
			checks = append(checks, anyValue(func(v *qdrant.Value) bool {
				s, ok := v.GetKind().(*qdrant.Value_StringValue)
				return ok && strings.Contains(s.StringValue, t)
			}))
		case *qdrant.Match_Keywords:
			set := stringSet(mv.Keywords.GetStrings())
			checks = append(checks, anyValue(func(v *qdrant.Value) bool {
				s, ok := v.GetKind().(*qdrant.Value_StringValue)
				if !ok {
					return false
				}
				_, in := set[s.StringValue]
				return in
			}))
		case *qdrant.Match_Integers:
			set := intSet(mv.Integers.GetIntegers())
			checks = append(checks, anyValue(func(v *qdrant.Value) bool {
				i, ok := v.GetKind().(*qdrant.Value_IntegerValue)
				if !ok {
					return false
				}
				_, in := set[i.IntegerValue]
				return in
			}))
		case *qdrant.Match_ExceptKeywords:
			set := stringSet(mv.ExceptKeywords.GetStrings())
			checks = append(checks, exceptCheck(path, func(v *qdrant.Value) bool {
				s, ok := v.GetKind().(*qdrant.Value_StringValue)
				if !ok {
					return true
				}
				_, in := set[s.StringValue]
				return !in
			}))
		case *qdrant.Match_ExceptIntegers:
			set := intSet(mv.ExceptIntegers.GetIntegers())
			checks = append(checks, exceptCheck(path, func(v *qdrant.Value) bool {
				i, ok := v.GetKind().(*qdrant.Value_IntegerValue)
				if !ok {
					return true
				}
				_, in := set[i.IntegerValue]
				return !in
			}))
		case *qdrant.Match_Phrase:
			return nil, unimplementedf("phrase match")
		case *qdrant.Match_TextAny:
			return nil, unimplementedf("text_any match")
		default:
			return nil, invalidf("match condition on %q is empty", fc.GetKey())
		}
	}
	if r := fc.GetRange(); r != nil {
		checks = append(checks, anyValue(func(v *qdrant.Value) bool {
			var x float64
			switch k := v.GetKind().(type) {
			case *qdrant.Value_IntegerValue:
				x = float64(k.IntegerValue)
			case *qdrant.Value_DoubleValue:
				x = k.DoubleValue
			default:
				return false
			}
			return inRange(x, r)
		}))
	}
	if vc := fc.GetValuesCount(); vc != nil {
		checks = append(checks, func(_ pointID, payload map[string]*qdrant.Value) bool {
			var n uint64
			for _, v := range path.values(payload, nil) {
				if l := v.GetListValue(); l != nil {
					n += uint64(len(l.GetValues()))
				} else {
					n++
				}
			}
			return (vc.Lt == nil || n < *vc.Lt) && (vc.Lte == nil || n <= *vc.Lte) &&
				(vc.Gt == nil || n > *vc.Gt) && (vc.Gte == nil || n >= *vc.Gte)
		})
	}
	if fc.IsEmpty != nil {
		want := fc.GetIsEmpty()
		checks = append(checks, func(_ pointID, payload map[string]*qdrant.Value) bool {
			return isEmptyValues(path.values(payload, nil)) == want
		})
	}
	if fc.IsNull != nil {
		want := fc.GetIsNull()
		checks = append(checks, func(_ pointID, payload map[string]*qdrant.Value) bool {
			return isNullValues(path.values(payload, nil)) == want
		})
	}
	if len(checks) == 0 {
		return nil, invalidf("field condition on %q has no condition", fc.GetKey())
	}
	if len(checks) == 1 {
		return checks[0], nil
	}
	return func(id pointID, payload map[string]*qdrant.Value) bool {
		for _, c := range checks {
			if !c(id, payload) {
				return false
			}
		}
		return true
	}, nil
}

// exceptCheck matches when the field is absent (no values, or an empty
// list) or any of its values is outside the excluded set.
func exceptCheck(path keyPath, vc valueCheck) predicate {
	return func(_ pointID, payload map[string]*qdrant.Value) bool {
		vals := path.values(payload, nil)
		if len(vals) == 0 {
			return true
		}
		for _, v := range vals {
			if l := v.GetListValue(); l != nil && len(l.GetValues()) == 0 {
				return true
			}
		}
		return anyElement(vals, vc)
	}
}

// anyElement reports whether vc holds for any of vals; a list value is
// tested by its elements, not as a whole.
func anyElement(vals []*qdrant.Value, vc valueCheck) bool {
	for _, v := range vals {
		if l := v.GetListValue(); l != nil {
			for _, e := range l.GetValues() {
				if vc(e) {
					return true
				}
			}
			continue
		}
		if vc(v) {
			return true
		}
	}
	return false
}

func inRange(x float64, r *qdrant.Range) bool {
	return (r.Lt == nil || x < *r.Lt) && (r.Lte == nil || x <= *r.Lte) &&
		(r.Gt == nil || x > *r.Gt) && (r.Gte == nil || x >= *r.Gte)
}

func isEmptyValues(vals []*qdrant.Value) bool {
	for _, v := range vals {
		switch k := v.GetKind().(type) {
		case *qdrant.Value_NullValue, nil:
		case *qdrant.Value_ListValue:
			if len(k.ListValue.GetValues()) > 0 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func isNullValues(vals []*qdrant.Value) bool {
	for _, v := range vals {
		if _, ok := v.GetKind().(*qdrant.Value_NullValue); ok {
			return true
		}
	}
	return false
}

func stringSet(ss []string) map[string]struct{} {
	m := make(map[string]struct{}, len(ss))
	for _, s := range ss {
		m[s] = struct{}{}
	}
	return m
}

func intSet(ns []int64) map[int64]struct{} {
	m := make(map[int64]struct{}, len(ns))
	for _, n := range ns {
		m[n] = struct{}{}
	}
	return m
}
