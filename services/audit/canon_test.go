package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// referenceCanonicalJSON is the definition of canonical payload JSON the
// log's first format used: decode into any with json.Number, encode
// without HTML escaping. canonicalJSON must agree with it byte for byte.
func referenceCanonicalJSON(b []byte) ([]byte, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("invalid utf-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after json value")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// referenceRecordJSON is how encoding/json encodes a record whose payload
// is canonical: the definition appendRecord must match.
func referenceRecordJSON(r Record) ([]byte, error) {
	r.Time = r.Time.UTC()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// referenceRedactTexts is the first definition of redaction: walk the
// decoded payload, replace text and content strings, encode again.
func referenceRedactTexts(p []byte) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil, false
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && (k == "text" || k == "content") {
					sum := sha256.Sum256([]byte(s))
					x[k] = fmt.Sprintf("[omitted: %d bytes, sha256 %s]", len(s), hex.EncodeToString(sum[:]))
					continue
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return nil, false
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), true
}

var canonicalCases = []string{
	`{"text":"a\u0000b","content":{"text":"x"},"list":[{"content":"é","text":1}],"text":"dup"}`,
	`{"b":1,"a":[true,false,null,"x"],"c":{"z":1,"y":{"q":-0.5e+10}}}`,
	`{"a":1,"a":2}`, `{"b":1,"a":2,"b":3}`, `{"a":{"x":1},"a":[1]}`,
	` [ 1 , 2 ] `, `"plain"`, `0`, `-0`, `1E400`, `1.5e-7`, `12345678901234567890123`,
	`"\u00e9\u4e2d\ud83d\ude00 \/ \b\f\n\r\t \u0001 \u001f \u007f"`,
	`"\ud800"`, `"\udc00\ud800"`, `"\ud800\u0041"`, `"\ud83d\ude00\ud83d"`,
	"\"raw\u2028sep\u2029\"", `"\u2028"`, `"<&>"`, `{"\"":1,"#":2,"\\":3,"a\"":4,"a#":5}`,
	`{"é":1,"e":2,"\u00e9":3}`, `{}`, `[]`, `[{}]`, `{"a":[]}`,
	// errors
	``, ` `, `{`, `[`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `01`, `1.`, `.5`, `-`, `1e`, `+1`,
	`tru`, `nul`, `"abc`, "\"a\x01\"", `"\x"`, `"\u12"`, `"\u12zz"`, `{} }`, `1 2`, `[1 2]`,
	`{"a" 1}`, `{1:2}`, "\xff", `"` + "\xc3" + `"`, `NaN`, `[1]x`,
}

func TestCanonicalJSONMatchesEncodingJSON(t *testing.T) {
	for _, in := range canonicalCases {
		checkCanonical(t, []byte(in))
	}
	// encoding/json's nesting limit is 10,000.
	for _, depth := range []int{maxDepth, maxDepth + 1} {
		checkCanonical(t, []byte(strings.Repeat("[", depth)+strings.Repeat("]", depth)))
		checkCanonical(t, []byte(strings.Repeat(`{"a":`, depth)+"1"+strings.Repeat("}", depth)))
	}
}

func checkCanonical(t *testing.T, in []byte) {
	t.Helper()
	show := func(b []byte) string { return string(b[:min(len(b), 80)]) }
	want, wantErr := referenceCanonicalJSON(in)
	got, err := canonicalJSON(in)
	if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
		t.Errorf("canonicalJSON(%q) = %q, %v; encoding/json gives %q, %v", show(in), show(got), err, show(want), wantErr)
	}
	if err != nil {
		return
	}
	wantRed, wantOK := referenceRedactTexts(got)
	red, err := canonicalize(got, true)
	if ok := err == nil; ok != wantOK || !bytes.Equal(red, wantRed) {
		t.Errorf("redactTexts(%q) = %q, %v; encoding/json gives %q, %v", show(got), show(red), ok, show(wantRed), wantOK)
	}
}

// FuzzCanonicalJSON holds canonicalJSON to encoding/json's definition:
// records written by either must verify under the other.
func FuzzCanonicalJSON(f *testing.F) {
	for _, c := range canonicalCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkCanonical(t, in)
	})
}

// FuzzRecordCodec holds appendRecord to encoding/json's encoding of the
// Record struct, and decodeRecord to what it encodes.
func FuzzRecordCodec(f *testing.F) {
	f.Add("id", "src", "t", "corr", int64(4), 1, `{"a":1}`, "", uint64(7), "acme", int64(1764320400123456789), "topic")
	f.Add("\x00\xff\u2028\"\\", "", "", "", int64(-1), -3, `"x"`, "base64", uint64(0), "租户", int64(0), "")
	f.Fuzz(func(t *testing.T, id, src, typ, corr string, off int64, part int, payload, enc string, seq uint64, tenant string, unixNano int64, topic string) {
		cp, err := canonicalJSON([]byte(payload))
		if err != nil {
			return
		}
		r := Record{ID: id, Source: src, Type: typ, CorrelationID: corr, Offset: off, Partition: part,
			Payload: cp, PayloadEncoding: enc, Seq: seq, Tenant: tenant, Time: time.Unix(0, unixNano), Topic: topic, canonical: true}
		want, wantErr := referenceRecordJSON(r)
		got, err := r.Marshal()
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("Marshal = %q, %v; encoding/json gives %q, %v", got, err, want, wantErr)
		}
		if err != nil {
			return
		}
		back, err := decodeRecord(got)
		if err != nil {
			t.Fatalf("decodeRecord(%q): %v", got, err)
		}
		var ref Record
		if err := json.Unmarshal(got, &ref); err != nil {
			t.Fatalf("encoding/json cannot decode %q: %v", got, err)
		}
		if !bytes.Equal(back.Payload, ref.Payload) || !back.Time.Equal(ref.Time) {
			t.Fatalf("decodeRecord(%q) payload %q time %v; encoding/json %q %v", got, back.Payload, back.Time, ref.Payload, ref.Time)
		}
		back.Payload, ref.Payload, back.Time, ref.Time = nil, nil, time.Time{}, time.Time{}
		if !reflect.DeepEqual(back, ref) {
			t.Fatalf("decodeRecord(%q) = %+v; encoding/json %+v", got, back, ref)
		}
	})
}

func TestRecordCodecCases(t *testing.T) {
	for _, r := range []Record{
		{ID: "a\u2029b", Type: "t", Offset: 1, Payload: json.RawMessage(`{"x":"<y>"}`), Seq: 2, Tenant: "t", Time: time.Date(2026, 12, 7, 5, 0, 0, 120000000, time.FixedZone("x", 3600)), Topic: "q"},
		{Payload: json.RawMessage(`null`), Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, // year out of range: an error in both
	} {
		r.canonical = true
		want, wantErr := referenceRecordJSON(r)
		got, err := r.Marshal()
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Errorf("Marshal = %q, %v; encoding/json gives %q, %v", got, err, want, wantErr)
		}
	}
	if _, err := decodeRecord([]byte(`{"ce_id":"","evil":1}`)); err == nil {
		t.Error("decodeRecord accepted an unknown field")
	}
}

// BenchmarkCanonicalJSON compares the one-pass canonicalizer with the
// encoding/json definition on a typical event payload.
func BenchmarkCanonicalJSON(b *testing.B) {
	in := []byte(`{"request_id":"7f1c2f3e-9a6b-4c1d-8e2f-0a1b2c3d4e5f","tenant_id":"acme","query":"How often should the unit be serviced?","groups":["eng","ops"],"top_k":5,"results":[{"chunk_id":"c1","score":0.91,"title":"Manual"},{"chunk_id":"c2","score":0.52,"title":"FAQ"}]}`)
	for _, impl := range []struct {
		name string
		fn   func([]byte) ([]byte, error)
	}{{"onepass", canonicalJSON}, {"encoding-json", referenceCanonicalJSON}} {
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, err := impl.fn(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
