package composetest

import (
	"fmt"
	"strings"
	"testing"
)

// frame is one server message of the edge's chat protocol (docs/edge.md)
// as the client received it.
type frame struct {
	Type         string `json:"type"`
	ID           string `json:"id"`
	RequestID    string `json:"request_id"`
	Seq          int    `json:"seq"`
	Text         string `json:"text"`
	FinishReason string `json:"finish_reason"`
	Code         string `json:"code"`
}

// deliveredOnce checks the frames one ask received, in arrival order,
// against the edge's promise that an answer reaches its client once even
// though the pipeline delivers at least once: a single request id, one
// accepted, tokens with seq 0, 1, 2… each exactly once and in order, at
// most one citations, at most one done and nothing after it. A replayed
// stream shows up as a seq sent again or as frames after done.
func deliveredOnce(frames []frame) error {
	var problems []string
	var reqID string
	var accepted, citations, done, next int
	for i, f := range frames {
		if f.RequestID != "" {
			if reqID != "" && f.RequestID != reqID {
				problems = append(problems, fmt.Sprintf("frame %d (%s) has request id %s, not %s", i, f.Type, f.RequestID, reqID))
			}
			reqID = f.RequestID
		}
		if done > 0 {
			problems = append(problems, fmt.Sprintf("frame %d (%s seq %d) after done", i, f.Type, f.Seq))
		}
		switch f.Type {
		case "accepted":
			accepted++
		case "token":
			if f.Seq != next {
				problems = append(problems, fmt.Sprintf("token seq %d (%q) where seq %d was due", f.Seq, f.Text, next))
			}
			next = max(next, f.Seq+1)
		case "citations":
			citations++
		case "done":
			done++
		}
	}
	if accepted > 1 {
		problems = append(problems, fmt.Sprintf("%d accepted", accepted))
	}
	if citations > 1 {
		problems = append(problems, fmt.Sprintf("%d citations", citations))
	}
	if done > 1 {
		problems = append(problems, fmt.Sprintf("%d done", done))
	}
	if len(problems) > 0 {
		return fmt.Errorf("request %s: %s", reqID, strings.Join(problems, "; "))
	}
	return nil
}

// oneAskPerRequest checks that no request id reached two asks: an answer
// routed to a second ask would be the same answer delivered twice.
func oneAskPerRequest(asks map[string][]frame) error {
	owner := map[string]string{}
	for id, frames := range asks {
		for _, f := range frames {
			if f.RequestID == "" {
				continue
			}
			if o, ok := owner[f.RequestID]; ok && o != id {
				return fmt.Errorf("request %s answered on asks %s and %s", f.RequestID, o, id)
			}
			owner[f.RequestID] = id
		}
	}
	return nil
}

// TestDeliveredOnce shows that the checks of the chaos load fail on what
// a duplicate looks like on the wire.
func TestDeliveredOnce(t *testing.T) {
	answer := func() []frame {
		return []frame{
			{Type: "accepted", ID: "a1", RequestID: "r1"},
			{Type: "token", ID: "a1", RequestID: "r1", Seq: 0, Text: "The "},
			{Type: "token", ID: "a1", RequestID: "r1", Seq: 1, Text: "answer"},
			{Type: "citations", ID: "a1", RequestID: "r1"},
			{Type: "done", ID: "a1", RequestID: "r1", FinishReason: "stop"},
		}
	}
	if err := deliveredOnce(answer()); err != nil {
		t.Fatalf("a clean answer: %v", err)
	}
	refusal := []frame{{Type: "accepted", RequestID: "r2"}, {Type: "done", RequestID: "r2", FinishReason: "refused"}}
	if err := deliveredOnce(refusal); err != nil {
		t.Fatalf("a refusal: %v", err)
	}
	timeout := []frame{{Type: "accepted", RequestID: "r3"}, {Type: "error", RequestID: "r3", Code: "timeout"}, {Type: "done", RequestID: "r3", FinishReason: "error"}}
	if err := deliveredOnce(timeout); err != nil {
		t.Fatalf("a timeout: %v", err)
	}
	bad := map[string]func([]frame) []frame{
		"done twice": func(f []frame) []frame { return append(f, f[4]) },
		"token seq repeated": func(f []frame) []frame {
			return append(f[:3:3], append([]frame{f[2]}, f[3:]...)...)
		},
		"stream replayed from seq 0": func(f []frame) []frame {
			return append(f[:3:3], append([]frame{f[1], f[2]}, f[3:]...)...)
		},
		"seq skipped":       func(f []frame) []frame { return append(f[:1:1], f[2:]...) },
		"replay after done": func(f []frame) []frame { return append(f, f[1], f[2]) },
		"accepted twice":    func(f []frame) []frame { return append(f[:1:1], f...) },
		"citations twice": func(f []frame) []frame {
			return append(f[:4:4], f[3], f[4])
		},
		"another request's frames": func(f []frame) []frame {
			f[2].RequestID = "r9"
			return f
		},
	}
	for name, mutate := range bad {
		if err := deliveredOnce(mutate(answer())); err == nil {
			t.Errorf("%s: not detected", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	asks := map[string][]frame{"a1": answer(), "a2": answer()}
	for i := range asks["a2"] {
		asks["a2"][i].ID = "a2"
	}
	if err := oneAskPerRequest(asks); err == nil {
		t.Error("one request answered on two asks: not detected")
	}
	asks["a2"] = refusal
	if err := oneAskPerRequest(asks); err != nil {
		t.Errorf("two requests: %v", err)
	}
}
