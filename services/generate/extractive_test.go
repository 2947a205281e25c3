package generate

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tributary-rag/tributary/pkg/events"
)

func TestSplitSentences(t *testing.T) {
	tests := []struct {
		text string
		want []string
	}{
		{"One. Two! Three?", []string{"One.", "Two!", "Three?"}},
		{"Version 3.5 shipped. It works.", []string{"Version 3.5 shipped.", "It works."}},
		{"See e.g. the manual. Done.", []string{"See e.g. the manual.", "Done."}},
		{"退款需要三十天。运费由买家承担！是吗？", []string{"退款需要三十天。", "运费由买家承担！", "是吗？"}},
		{"他说：“好的。”然后走了。", []string{"他说：“好的。”", "然后走了。"}},
		{"Line one\nLine two\n\n", []string{"Line one", "Line two"}},
		{"Mixed 中文。English sentence. 再来", []string{"Mixed 中文。", "English sentence.", "再来"}},
		{"   ", nil},
		{"", nil},
		{"No terminator", []string{"No terminator"}},
	}
	for _, tt := range tests {
		if got := SplitSentences(tt.text); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitSentences(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestStreamPieces(t *testing.T) {
	tests := []struct {
		text string
		want []string
	}{
		{"Refunds take 30 days. [1]", []string{"Refunds ", "take ", "30 ", "days. ", "[1]"}},
		{"退款需三十天。[1]", []string{"退", "款", "需", "三", "十", "天", "。", "[1]"}},
		{"  lead", []string{"  ", "lead"}},
		{"API 密钥", []string{"API ", "密", "钥"}},
		{"", nil},
	}
	for _, tt := range tests {
		if got := StreamPieces(tt.text); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("StreamPieces(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func FuzzStreamPieces(f *testing.F) {
	for _, s := range []string{"Refunds take 30 days. [1]", "退款需三十天。[1]", "  a  b ", "\xff\xfe中", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pieces := StreamPieces(s)
		if got := strings.Join(pieces, ""); got != s {
			t.Fatalf("pieces of %q join to %q", s, got)
		}
		for _, p := range pieces {
			if p == "" {
				t.Fatalf("empty piece in %q", pieces)
			}
		}
		for _, sent := range SplitSentences(s) {
			if sent == "" || !strings.Contains(s, sent) {
				t.Fatalf("sentence %q is not a non-empty part of %q", sent, s)
			}
		}
		_ = termSet(s)
		if utf8.ValidString(s) {
			_ = BuildPrompt(s, []events.RetrievedChunk{{ChunkID: "c", Text: s, Score: 1}}, PromptOptions{})
		}
	})
}

func collect(t *testing.T, g Generator, req Request) (string, []string, Generation) {
	t.Helper()
	var pieces []string
	gen, err := g.Generate(context.Background(), req, func(s string) error {
		pieces = append(pieces, s)
		return nil
	})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return strings.Join(pieces, ""), pieces, gen
}

func TestExtractivePicksTheFact(t *testing.T) {
	tests := []struct {
		name     string
		question string
		chunks   []events.RetrievedChunk
		wantIn   string // the sentence with the fact
		wantCite string // its marker, right after it
		wantNot  []string
	}{
		{
			name:     "english fact in second source",
			question: "How many days do customers have to request a refund?",
			chunks: []events.RetrievedChunk{
				chunk(0, "Shipping", "Orders ship within two business days. Tracking numbers arrive by e-mail.", 3),
				chunk(1, "Returns", "Our store opened in 2004. Customers may request a refund within 30 days of delivery. Gift cards are final.", 2),
			},
			wantIn:   "Customers may request a refund within 30 days of delivery. [2]",
			wantCite: "[2]",
			wantNot:  []string{"Our store opened", "Gift cards"},
		},
		{
			name:     "chinese fact",
			question: "年假有多少天？",
			chunks: []events.RetrievedChunk{
				chunk(0, "报销", "差旅费用需在三十天内报销。发票必须真实有效。", 3),
				chunk(1, "休假制度", "公司成立于二零零四年。正式员工每年享有十五天带薪年假。病假需提供证明。", 2),
			},
			wantIn:   "正式员工每年享有十五天带薪年假。[2]",
			wantCite: "[2]",
			wantNot:  []string{"公司成立", "发票"},
		},
		{
			name:     "first source",
			question: "What is the API rate limit?",
			chunks: []events.RetrievedChunk{
				chunk(0, "Limits", "The API rate limit is 100 requests per minute per key. Bursts are allowed.", 5),
				chunk(1, "Keys", "Keys are rotated every 90 days.", 1),
			},
			wantIn:   "The API rate limit is 100 requests per minute per key. [1]",
			wantCite: "[1]",
			wantNot:  []string{"rotated"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := BuildPrompt(tt.question, tt.chunks, PromptOptions{})
			text, pieces, gen := collect(t, Extractive{}, Request{Prompt: p})
			if !strings.HasPrefix(text, tt.wantIn) {
				t.Errorf("answer = %q, want it to start with %q", text, tt.wantIn)
			}
			for _, n := range tt.wantNot {
				if strings.Contains(text, n) {
					t.Errorf("answer = %q, should not contain %q", text, n)
				}
			}
			cites := Citations(text, p.Sources)
			want := tt.chunks[tt.wantCite[1]-'1']
			if len(cites) == 0 || cites[0].ChunkID != want.ChunkID {
				t.Errorf("first citation = %+v, want chunk %s", cites, want.ChunkID)
			}
			if gen.FinishReason != FinishStop || gen.CompletionTokens != len(pieces) || gen.Model != ModeExtractive || len(pieces) < 5 {
				t.Errorf("generation = %+v with %d pieces", gen, len(pieces))
			}
		})
	}
}

func TestExtractiveEdges(t *testing.T) {
	p := BuildPrompt("quantum chromodynamics?", []events.RetrievedChunk{chunk(0, "A", "Bananas are yellow.", 1)}, PromptOptions{})
	if text, _, _ := collect(t, Extractive{}, Request{Prompt: p}); text != RefusalEnglish {
		t.Errorf("no overlap: answer = %q, want the refusal", text)
	}
	p = BuildPrompt("bananas yellow", []events.RetrievedChunk{chunk(0, "A", "Bananas are yellow. Bananas are yellow.", 1)}, PromptOptions{})
	if text, _, _ := collect(t, Extractive{}, Request{Prompt: p}); text != "Bananas are yellow. [1]" {
		t.Errorf("duplicate sentence: answer = %q", text)
	}
	_, pieces, gen := collect(t, Extractive{}, Request{Prompt: p, MaxTokens: 2})
	if len(pieces) != 2 || gen.FinishReason != FinishLength {
		t.Errorf("MaxTokens 2: %d pieces, finish %q; want 2, length", len(pieces), gen.FinishReason)
	}
	stop := errors.New("stop")
	gen, err := Extractive{}.Generate(context.Background(), Request{Prompt: p}, func(string) error { return stop })
	if !errors.Is(err, stop) || gen.FinishReason != FinishCancelled {
		t.Errorf("onToken error: %v, %q; want it back with cancelled", err, gen.FinishReason)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (Extractive{}).Generate(ctx, Request{Prompt: p}, func(string) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: err = %v", err)
	}
}

func TestExtractiveJoins(t *testing.T) {
	tests := []struct {
		name, question string
		chunks         []events.RetrievedChunk
		want           string
	}{
		{
			name:     "chinese sentences run on without spaces",
			question: "年假和病假怎么规定？",
			chunks:   []events.RetrievedChunk{chunk(0, "a", "员工享有年假十五天。病假需提供证明。", 2)},
			want:     "病假需提供证明。[1]员工享有年假十五天。[1]", // best (shorter) first
		},
		{
			name:     "english sentences from two sources",
			question: "refund window and shipping time",
			chunks: []events.RetrievedChunk{
				chunk(0, "a", "The refund window is 30 days.", 2),
				chunk(1, "b", "Shipping time is two days.", 1),
			},
			want: "The refund window is 30 days. [1] Shipping time is two days. [2]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, _, _ := collect(t, Extractive{}, Request{Prompt: BuildPrompt(tt.question, tt.chunks, PromptOptions{})})
			if text != tt.want {
				t.Errorf("answer = %q, want %q", text, tt.want)
			}
		})
	}
}
