package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestSPMGolden compares Encode on stories260K's vocabulary with ids from
// tools/tokgolden/spm_golden.py, an independent Python port of llama2.c's
// encoder.
func TestSPMGolden(t *testing.T) {
	tok := storiesTokenizer(t)
	data, err := os.ReadFile(filepath.Join("testdata", "stories260K_spm.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tests []struct {
		Text string  `json:"text"`
		BOS  bool    `json:"bos"`
		IDs  []int32 `json:"ids"`
	}
	if err := json.Unmarshal(data, &tests); err != nil {
		t.Fatal(err)
	}
	if len(tests) < 20 {
		t.Fatalf("only %d golden cases", len(tests))
	}
	for _, tt := range tests {
		got := tok.Encode(tt.Text, tt.BOS)
		if !slices.Equal(got, tt.IDs) {
			t.Errorf("Encode(%q, %v) = %v, want %v", tt.Text, tt.BOS, got, tt.IDs)
		}
		if dec := tok.Decode(tt.IDs); dec != tt.Text {
			t.Errorf("Decode(%v) = %q, want %q", tt.IDs, dec, tt.Text)
		}
	}
}

func TestSPMPieces(t *testing.T) {
	tok := storiesTokenizer(t)
	tests := []struct {
		token string
		want  string
	}{
		{"\u2581the", " the"},
		{"<0x0A>", "\n"},
		{"<0xE6>", "\xe6"},
		{"<s>", "<s>"},
		{"he", "he"},
	}
	for _, tt := range tests {
		id := tok.ID(tt.token)
		if id < 0 {
			t.Fatalf("token %q missing from stories260K", tt.token)
		}
		if got := string(tok.Piece(id)); got != tt.want {
			t.Errorf("Piece(%d %q) = %q, want %q", id, tt.token, got, tt.want)
		}
	}
	if got := tok.Piece(-1); got != nil {
		t.Errorf("Piece(-1) = %q, want nil", got)
	}
	if got := tok.Piece(int32(tok.VocabSize())); got != nil {
		t.Errorf("Piece(vocab size) = %q, want nil", got)
	}
	if tok.VocabSize() != 512 || tok.BOS() != 1 || tok.EOS() != 2 {
		t.Errorf("VocabSize, BOS, EOS = %d, %d, %d, want 512, 1, 2", tok.VocabSize(), tok.BOS(), tok.EOS())
	}
	for id, want := range map[int32]bool{1: false, 2: true, 0: false, 300: false, -5: false, 9999: false} {
		if got := tok.IsEOG(id); got != want {
			t.Errorf("IsEOG(%d) = %v, want %v", id, got, want)
		}
	}
}

func TestSPMByteFallback(t *testing.T) {
	tok := storiesTokenizer(t)
	// "日" is not in the 512-token vocabulary: its three UTF-8 bytes
	// become <0xE6> <0x97> <0xA5>, which sit at byte value + 3.
	got := tok.Encode("日", false)
	want := []int32{tok.ID("\u2581"), 0xE6 + 3, 0x97 + 3, 0xA5 + 3}
	if !slices.Equal(got, want) {
		t.Errorf("Encode(日) = %v, want %v", got, want)
	}
	// Invalid UTF-8 survives as bytes.
	got = tok.Encode("a\xffb", false)
	if dec := string(tok.DecodeBytes(got)); dec != "a\xffb" {
		t.Errorf("DecodeBytes(Encode(a\\xffb)) = %q via %v", dec, got)
	}
	if dec := tok.Decode(got); dec != "a\uFFFDb" {
		t.Errorf("Decode(Encode(a\\xffb)) = %q, want a\uFFFDb", dec)
	}
	// Special tokens in the text are matched verbatim, and the text after
	// a special token gets the dummy prefix again (llama.cpp's rule).
	got = tok.Encode("<s>Once</s>", false)
	once := tok.Encode("Once", false)
	want = append(append([]int32{1}, once...), 2)
	if !slices.Equal(got, want) {
		t.Errorf("Encode(<s>Once</s>) = %v, want %v", got, want)
	}
	lit := tok.EncodeLiteral("<s>", false)
	if slices.Contains(lit, 1) || tok.Decode(lit) != "<s>" {
		t.Errorf("EncodeLiteral(<s>) = %v (decodes to %q), want plain text", lit, tok.Decode(lit))
	}
}

// TestStreamDecoderReference streams the ids of the model's reference text
// token by token: deltas must be valid UTF-8 and add up to the text, with
// the space after BOS dropped as llama2.c does.
func TestStreamDecoderReference(t *testing.T) {
	tok := storiesTokenizer(t)
	const text = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.\nLily's mom said, \"Lily, let's go to the park.\" 日本 \U0001F600"
	ids := tok.Encode(text, true)
	d := tok.NewStreamDecoder(-1)
	var b strings.Builder
	held := 0
	for _, id := range ids {
		delta := d.Add(id)
		if !utf8.ValidString(delta) {
			t.Fatalf("Add(%d) = %q, not valid UTF-8", id, delta)
		}
		if delta == "" && tok.Type(id) == TypeByte {
			held++
		}
		b.WriteString(delta)
	}
	b.WriteString(d.Flush())
	if b.String() != text {
		t.Errorf("streamed text = %q, want %q", b.String(), text)
	}
	if held == 0 {
		t.Errorf("no byte token was held back; the test text should split characters")
	}
}

func TestStreamDecoderInvalid(t *testing.T) {
	tok := storiesTokenizer(t)
	d := tok.NewStreamDecoder(5)
	tests := []struct {
		id   int32
		want string
	}{
		{0xE6 + 3, ""},                   // first byte of a 3-byte character
		{0x97 + 3, ""},                   // second byte
		{tok.ID("he"), "\uFFFD\uFFFDhe"}, // the character never completes
		{0xFF + 3, "\uFFFD"},             // a byte that never starts a character
		{2, ""},                          // EOS: control tokens are silent
		{0xF0 + 3, ""},
	}
	for _, tt := range tests {
		if got := d.Add(tt.id); got != tt.want {
			t.Errorf("Add(%d) = %q, want %q", tt.id, got, tt.want)
		}
	}
	if got := d.Flush(); got != "\uFFFD" {
		t.Errorf("Flush() = %q, want U+FFFD", got)
	}
	if got := d.Flush(); got != "" {
		t.Errorf("second Flush() = %q, want empty", got)
	}
}

func FuzzSPMRoundTrip(f *testing.F) {
	tok := storiesTokenizer(f)
	for _, s := range []string{"", " ", "Once upon a time", "  x  ", "日本語", "a\nb\tc", "\xff\xfe", "Lily's \U0001F600"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s, true)
		for _, id := range ids {
			if id < 0 || int(id) >= tok.VocabSize() {
				t.Fatalf("Encode(%q) produced id %d", s, id)
			}
		}
		if strings.Contains(s, "\u2581") || strings.Contains(s, "<s>") || strings.Contains(s, "</s>") || strings.Contains(s, "<unk>") {
			return // these spell other tokens and cannot round-trip
		}
		if got := string(tok.DecodeBytes(ids)); got != s {
			t.Fatalf("DecodeBytes(Encode(%q)) = %q", s, got)
		}
		if got := tok.Decode(ids); got != strings.ToValidUTF8(s, "\uFFFD") {
			t.Fatalf("Decode(Encode(%q)) = %q", s, got)
		}
		d := tok.NewStreamDecoder(-1)
		var b strings.Builder
		for _, id := range ids {
			b.WriteString(d.Add(id))
		}
		b.WriteString(d.Flush())
		if utf8.ValidString(s) && b.String() != s {
			t.Fatalf("streamed Encode(%q) = %q", s, b.String())
		}
	})
}
