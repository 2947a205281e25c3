package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
)

func hdrs(kv ...string) []kafka.Header {
	var hs []kafka.Header
	for i := 0; i+1 < len(kv); i += 2 {
		hs = append(hs, kafka.Header{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return hs
}

func TestRecordCanonical(t *testing.T) {
	brokerTime := time.Date(2026, 11, 28, 10, 0, 0, 0, time.FixedZone("x", 3600))
	tests := []struct {
		name string
		msg  kafka.Message
		want string
	}{
		{
			name: "event with every header, keys sorted, whitespace removed",
			msg: kafka.Message{Topic: "tributary.chunks.v1", Partition: 2, Offset: 41, Time: brokerTime,
				Headers: hdrs("ce_specversion", "1.0", "ce_id", "e1", "ce_source", "tributary/ingest", "ce_type", "tributary.chunk.created",
					"ce_time", "2026-11-28T09:30:00.5+01:00", "tenantid", "acme", "correlationid", "r1"),
				Value: []byte(`{ "z": 1, "a": {"y": [1, 2.50, "<b>"], "b": null}, "tenant_id": "acme" }`)},
			want: `{"ce_id":"e1","ce_source":"tributary/ingest","ce_type":"tributary.chunk.created","correlation_id":"r1","offset":41,"partition":2,"payload":{"a":{"b":null,"y":[1,2.50,"<b>"]},"tenant_id":"acme","z":1},"seq":7,"tenant":"acme","time":"2026-11-28T08:30:00.5Z","topic":"tributary.chunks.v1"}`,
		},
		{
			name: "tenant from payload when header missing, broker time when ce_time missing",
			msg: kafka.Message{Topic: "t", Partition: 0, Offset: 0, Time: brokerTime,
				Headers: hdrs("ce_type", "x.y"), Value: []byte(`{"tenant_id":"globex","n":"中文"}`)},
			want: `{"ce_id":"","ce_type":"x.y","offset":0,"partition":0,"payload":{"n":"中文","tenant_id":"globex"},"seq":7,"tenant":"globex","time":"2026-11-28T09:00:00Z","topic":"t"}`,
		},
		{
			name: "non-JSON value kept as base64",
			msg:  kafka.Message{Topic: "t", Offset: 3, Time: brokerTime, Value: []byte{0xff, 0x00, 'a'}},
			want: `{"ce_id":"","ce_type":"","offset":3,"partition":0,"payload":"/wBh","payload_encoding":"base64","seq":7,"tenant":"","time":"2026-11-28T09:00:00Z","topic":"t"}`,
		},
		{
			name: "empty value",
			msg:  kafka.Message{Topic: "t", Offset: 4, Time: brokerTime},
			want: `{"ce_id":"","ce_type":"","offset":4,"partition":0,"payload":"","payload_encoding":"base64","seq":7,"tenant":"","time":"2026-11-28T09:00:00Z","topic":"t"}`,
		},
		{
			name: "two JSON values are not JSON",
			msg:  kafka.Message{Topic: "t", Offset: 5, Time: brokerTime, Value: []byte(`{} {}`)},
			want: `{"ce_id":"","ce_type":"","offset":5,"partition":0,"payload":"e30ge30=","payload_encoding":"base64","seq":7,"tenant":"","time":"2026-11-28T09:00:00Z","topic":"t"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRecord(tt.msg)
			r.Seq = 7
			got, err := r.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("Marshal() =\n%s\nwant\n%s", got, tt.want)
			}
			back, err := UnmarshalRecord(got)
			if err != nil {
				t.Fatalf("UnmarshalRecord: %v", err)
			}
			again, _ := back.Marshal()
			if !bytes.Equal(again, got) {
				t.Errorf("round trip changed bytes:\n%s\n%s", again, got)
			}
		})
	}
}

func TestUnmarshalRecordRefusesNonCanonical(t *testing.T) {
	good := `{"ce_id":"","ce_type":"","offset":4,"partition":0,"payload":{"a":1},"seq":7,"tenant":"","time":"2026-11-28T09:00:00Z","topic":"t"}`
	if _, err := UnmarshalRecord([]byte(good)); err != nil {
		t.Fatalf("UnmarshalRecord(good) = %v", err)
	}
	tests := []struct {
		name string
		in   string
	}{
		{"extra space", `{"ce_id":"", "ce_type":"","offset":4,"partition":0,"payload":{"a":1},"seq":7,"tenant":"","time":"2026-11-28T09:00:00Z","topic":"t"}`},
		{"keys out of order", `{"ce_type":"","ce_id":"","offset":4,"partition":0,"payload":{"a":1},"seq":7,"tenant":"","time":"2026-11-28T09:00:00Z","topic":"t"}`},
		{"payload keys out of order", `{"ce_id":"","ce_type":"","offset":4,"partition":0,"payload":{"b":1,"a":1},"seq":7,"tenant":"","time":"2026-11-28T09:00:00Z","topic":"t"}`},
		{"unknown field", `{"ce_id":"","ce_type":"","evil":1,"offset":4,"partition":0,"payload":{"a":1},"seq":7,"tenant":"","time":"2026-11-28T09:00:00Z","topic":"t"}`},
		{"trailing data", good + `{}`},
		{"not json", `garbage`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := UnmarshalRecord([]byte(tt.in)); err == nil {
				t.Errorf("UnmarshalRecord(%q) = nil error, want one", tt.in)
			}
		})
	}
	_, err := UnmarshalRecord([]byte(`{"ce_id":"","ce_type":"","offset":4,"partition":0,"payload":{"b":1,"a":1},"seq":7,"tenant":"","time":"2026-11-28T09:00:00Z","topic":"t"}`))
	if !errors.Is(err, ErrNotCanonical) {
		t.Errorf("err = %v, want ErrNotCanonical", err)
	}
	var v map[string]any
	if json.Unmarshal([]byte(good), &v) != nil {
		t.Fatal("good is not json")
	}
}

// TestRecordPolicy: by default answer.delta events are left out and chunk
// and document texts are replaced by size and hash, while the completed
// answer and the question are kept; the options keep everything.
func TestRecordPolicy(t *testing.T) {
	msg := func(typ, value string) kafka.Message {
		m := testMsg("tributary.x.v1", 0, 1, "acme", typ)
		m.Value = []byte(value)
		return m
	}
	chunk := msg(events.TypeChunkCreated, `{"chunk_id":"c1","tenant_id":"acme","text":"secret chunk text","meta":{"content":"x"}}`)
	rec, keep := RecordPolicy{}.apply(chunk)
	if !keep || strings.Contains(string(rec.Payload), "secret") || !strings.Contains(string(rec.Payload), `"text":"[omitted: 17 bytes, sha256 `) || !strings.Contains(string(rec.Payload), `"chunk_id":"c1"`) {
		t.Errorf("chunk record = %s, %v; want its text omitted, its ids kept", rec.Payload, keep)
	}
	if _, err := rec.Marshal(); err != nil {
		t.Errorf("redacted record does not marshal: %v", err)
	}
	if _, keep := (RecordPolicy{}).apply(msg(events.TypeAnswerDelta, `{"text":"tok"}`)); keep {
		t.Errorf("answer.delta recorded by default")
	}
	done, _ := RecordPolicy{}.apply(msg(events.TypeAnswerCompleted, `{"text":"the whole answer"}`))
	q, _ := RecordPolicy{}.apply(msg(events.TypeQueryReceived, `{"question":"who?"}`))
	if !strings.Contains(string(done.Payload), "the whole answer") || !strings.Contains(string(q.Payload), "who?") {
		t.Errorf("answer or question lost: %s %s", done.Payload, q.Payload)
	}
	all := RecordPolicy{Deltas: true, Texts: true}
	if rec, keep := all.apply(chunk); !keep || !strings.Contains(string(rec.Payload), "secret chunk text") {
		t.Errorf("Texts: %s", rec.Payload)
	}
	if _, keep := all.apply(msg(events.TypeAnswerDelta, `{"text":"tok"}`)); !keep {
		t.Errorf("Deltas: delta left out")
	}
}
