package chunk

import (
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/tributary-rag/tributary/pkg/docparse"
)

// checkChunks verifies the invariants every split must hold: chunks within
// the size limit, trimmed and non-empty, offsets that map back to text,
// increasing positions, overlaps within the limit, correct hashes, and every
// non-whitespace rune of text covered.
func checkChunks(t *testing.T, text string, chunks []Chunk, size, overlap int) {
	t.Helper()
	runes := []rune(text)
	covered := make([]bool, len(runes))
	for i, c := range chunks {
		if c.Index != i {
			t.Errorf("chunk %d: Index = %d", i, c.Index)
		}
		n := utf8.RuneCountInString(c.Text)
		if n == 0 || n > size {
			t.Errorf("chunk %d: %d runes, want 1..%d: %q", i, n, size, c.Text)
		}
		if strings.TrimSpace(c.Text) != c.Text {
			t.Errorf("chunk %d: not trimmed: %q", i, c.Text)
		}
		if c.Start < 0 || c.End > len(runes) || c.Start >= c.End {
			t.Fatalf("chunk %d: offsets [%d,%d) outside text of %d runes", i, c.Start, c.End, len(runes))
		}
		if got := string(runes[c.Start:c.End]); got != c.Text {
			t.Errorf("chunk %d: text[%d:%d] = %q, want %q", i, c.Start, c.End, got, c.Text)
		}
		sum := sha256.Sum256([]byte(c.Text))
		if c.Hash != hex.EncodeToString(sum[:]) {
			t.Errorf("chunk %d: Hash = %q, want sha256 of text", i, c.Hash)
		}
		if i > 0 {
			p := chunks[i-1]
			if c.Start <= p.Start || c.End <= p.End {
				t.Errorf("chunk %d [%d,%d) does not advance past chunk %d [%d,%d)", i, c.Start, c.End, i-1, p.Start, p.End)
			}
			if ov := p.End - c.Start; ov > overlap {
				t.Errorf("chunks %d and %d overlap by %d runes, limit %d", i-1, i, ov, overlap)
			}
		}
		for j := c.Start; j < c.End; j++ {
			covered[j] = true
		}
	}
	for j, r := range runes {
		if !covered[j] && !unicode.IsSpace(r) {
			t.Fatalf("rune %d (%q) is in no chunk", j, r)
		}
	}
}

func texts(chunks []Chunk) []string {
	out := make([]string, len(chunks))
	for i, c := range chunks {
		out[i] = c.Text
	}
	return out
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		size    int
		overlap int
		want    []string // nil: check invariants only
	}{
		{
			name: "chinese sentences keep their punctuation",
			text: "第一句。第二句！第三句？第四句；", size: 4, overlap: -1,
			want: []string{"第一句。", "第二句！", "第三句？", "第四句；"},
		},
		{
			name: "chinese sentences pack up to the size",
			text: "第一句。第二句！第三句？第四句；", size: 8, overlap: -1,
			want: []string{"第一句。第二句！", "第三句？第四句；"},
		},
		{
			name: "english sentences then words",
			text: "One two. Three four. Five six.", size: 10, overlap: -1,
			want: []string{"One two.", "Three", "four.", "Five six."},
		},
		{
			name: "paragraphs before lines",
			text: "alpha beta\ngamma\n\ndelta epsilon", size: 16, overlap: -1,
			want: []string{"alpha beta\ngamma", "delta epsilon"},
		},
		{
			name: "overlap repeats whole trailing words",
			text: "a b c d e f g h", size: 5, overlap: 2,
			// Trailing separators do not count against the size: "a b c "
			// is 5 runes once trimmed.
			want: []string{"a b c", "c d e", "e f g", "g h"},
		},
		{
			name: "chinese clauses",
			text: "春天来了，花开了、草绿了，鸟儿在歌唱。", size: 7, overlap: -1,
			want: []string{"春天来了，", "花开了、", "草绿了，", "鸟儿在歌唱。"},
		},
		{
			name: "no separators: hard cut between runes",
			text: strings.Repeat("字", 12), size: 5, overlap: -1,
			want: []string{"字字字字字", "字字字字字", "字字"},
		},
		{
			name: "ascii without separators",
			text: strings.Repeat("x", 23), size: 10, overlap: 3,
			want: []string{strings.Repeat("x", 10), strings.Repeat("x", 10), "xxx"},
		},
		{
			name: "ideographic space separates",
			text: "甲乙丙\u3000丁戊己\u3000庚辛壬", size: 4, overlap: -1,
			want: []string{"甲乙丙", "丁戊己", "庚辛壬"},
		},
		{name: "empty", text: "", size: 10, want: []string{}},
		{
			name: "long whitespace runs",
			text: "a" + strings.Repeat(" ", 100000) + "b c\n\n\n\n" + strings.Repeat("\n \t", 10000) + "d", size: 3, overlap: 1,
			want: []string{"a", "b c", "d"},
		},
		{name: "whitespace only", text: " \n\n \t ", size: 10, want: []string{}},
		{
			name: "mixed english and chinese",
			text: "Tributary 支持中文和英文。It splits sentences; it keeps punctuation! 然后按逗号，再按空格切分。",
			size: 20, overlap: 5,
		},
		{
			name: "invalid utf-8 counts as replacement runes",
			text: "ab\xffcd\xfe. ef gh", size: 4, overlap: 1,
		},
		{
			name: "default size on long english",
			text: strings.Repeat("The quick brown fox jumps over the lazy dog. ", 200),
			size: 500, overlap: 50,
		},
		{
			name: "default size on long chinese",
			text: strings.Repeat("敏捷的棕色狐狸跳过了懒狗，然后继续奔跑。", 200),
			size: 500, overlap: 50,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(Options{Size: tt.size, Overlap: tt.overlap})
			if err != nil {
				t.Fatal(err)
			}
			chunks := s.Split(tt.text)
			checkChunks(t, tt.text, chunks, s.Size(), s.Overlap())
			if tt.want != nil {
				if got := texts(chunks); !reflect.DeepEqual(got, tt.want) {
					t.Errorf("Split(%q) = %q, want %q", tt.text, got, tt.want)
				}
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name                  string
		opts                  Options
		wantSize, wantOverlap int
		wantErr               bool
	}{
		{name: "zero value gives defaults", opts: Options{}, wantSize: 500, wantOverlap: 50},
		{name: "overlap defaults to a tenth", opts: Options{Size: 1000}, wantSize: 1000, wantOverlap: 100},
		{name: "negative overlap disables it", opts: Options{Size: 300, Overlap: -1}, wantSize: 300, wantOverlap: 0},
		{name: "explicit", opts: Options{Size: 200, Overlap: 20}, wantSize: 200, wantOverlap: 20},
		{name: "overlap as large as size", opts: Options{Size: 10, Overlap: 10}, wantErr: true},
		{name: "negative size", opts: Options{Size: -5}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.opts)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("New(%+v) = %+v, want error", tt.opts, s)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%+v): %v", tt.opts, err)
			}
			if s.Size() != tt.wantSize || s.Overlap() != tt.wantOverlap {
				t.Errorf("New(%+v) = size %d overlap %d, want %d %d", tt.opts, s.Size(), s.Overlap(), tt.wantSize, tt.wantOverlap)
			}
		})
	}
}

func TestSplitDocument(t *testing.T) {
	guide := []string{"Guide"}
	install := []string{"Guide", "Install"}
	linux := []string{"Guide", "Install", "Linux"}
	usage := []string{"Guide", "Usage"}
	doc := docparse.Document{Blocks: []docparse.Block{
		{Text: "Guide", HeadingPath: guide, Heading: true},
		{Text: "This guide explains the tool.", HeadingPath: guide},
		{Text: "Install", HeadingPath: install, Heading: true},
		{Text: "Download the archive. Unpack it. Run the installer. Restart the machine.", HeadingPath: install},
		{Text: "Linux", HeadingPath: linux, Heading: true},
		{Text: "Use the package manager.", HeadingPath: linux},
		{Text: "Usage", HeadingPath: usage, Heading: true},
		{Text: "用法很简单。运行命令即可。", HeadingPath: usage},
	}}
	s, err := New(Options{Size: 40, Overlap: 25})
	if err != nil {
		t.Fatal(err)
	}
	chunks := s.SplitDocument(doc)
	text := doc.Text()
	checkChunks(t, text, chunks, 40, 25)
	want := []struct {
		text string
		path []string
	}{
		{"Guide\n\nThis guide explains the tool.", guide},
		{"Install\n\nDownload the archive.", install},
		{"Download the archive. Unpack it.", install},
		{"Unpack it. Run the installer.", install},
		{"Run the installer. Restart the machine.", install},
		{"Linux\n\nUse the package manager.", linux},
		{"Usage\n\n用法很简单。运行命令即可。", usage},
	}
	if len(chunks) != len(want) {
		t.Fatalf("SplitDocument: %d chunks %q, want %d", len(chunks), texts(chunks), len(want))
	}
	for i, w := range want {
		if chunks[i].Text != w.text || !reflect.DeepEqual(chunks[i].HeadingPath, w.path) {
			t.Errorf("chunk %d = %q under %q, want %q under %q", i, chunks[i].Text, chunks[i].HeadingPath, w.text, w.path)
		}
		if chunks[i].Page != 0 || chunks[i].PageEnd != 0 {
			t.Errorf("chunk %d: pages %d-%d, want none", i, chunks[i].Page, chunks[i].PageEnd)
		}
	}
}

func TestSplitDocumentPages(t *testing.T) {
	doc := docparse.Document{Format: docparse.FormatPDF, Pages: 3, Blocks: []docparse.Block{
		{Text: "Page one starts here.", Page: 1},
		{Text: "Page one ends here.", Page: 1},
		{Text: "Page two is short.", Page: 2},
		{Text: "Page three has the last words.", Page: 3},
	}}
	s, err := New(Options{Size: 45, Overlap: -1})
	if err != nil {
		t.Fatal(err)
	}
	chunks := s.SplitDocument(doc)
	checkChunks(t, doc.Text(), chunks, 45, 0)
	want := []struct {
		text          string
		page, pageEnd int
	}{
		{"Page one starts here.\n\nPage one ends here.", 1, 1},
		{"Page two is short.", 2, 2},
		{"Page three has the last words.", 3, 3},
	}
	// With a larger size a chunk spans pages.
	s2, err := New(Options{Size: 70, Overlap: -1})
	if err != nil {
		t.Fatal(err)
	}
	chunks2 := s2.SplitDocument(doc)
	checkChunks(t, doc.Text(), chunks2, 70, 0)
	if len(chunks) != len(want) {
		t.Fatalf("SplitDocument: %q, want %d chunks", texts(chunks), len(want))
	}
	for i, w := range want {
		if c := chunks[i]; c.Text != w.text || c.Page != w.page || c.PageEnd != w.pageEnd {
			t.Errorf("chunk %d = %q pages %d-%d, want %q pages %d-%d", i, c.Text, c.Page, c.PageEnd, w.text, w.page, w.pageEnd)
		}
	}
	if len(chunks2) != 2 {
		t.Fatalf("size 70: %q, want 2 chunks", texts(chunks2))
	}
	if c := chunks2[0]; c.Page != 1 || c.PageEnd != 2 {
		t.Errorf("size 70: chunk 0 %q pages %d-%d, want 1-2", c.Text, c.Page, c.PageEnd)
	}
	if c := chunks2[1]; c.Page != 3 || c.PageEnd != 3 {
		t.Errorf("size 70: chunk 1 %q pages %d-%d, want 3-3", c.Text, c.Page, c.PageEnd)
	}
}

func TestSplitDocumentEmpty(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.SplitDocument(docparse.Document{}); len(got) != 0 {
		t.Errorf("SplitDocument(empty) = %v, want no chunks", got)
	}
}

func FuzzChunk(f *testing.F) {
	f.Add("第一句。第二句！第三句？", 4, 1)
	f.Add("One two. Three four. Five six.", 10, 3)
	f.Add("a b c d e f g h", 5, 2)
	f.Add("alpha\n\nbeta\ngamma, delta; epsilon", 7, 0)
	f.Add("ab\xffcd\xfe. ef gh", 3, 1)
	f.Add(strings.Repeat("字", 50), 7, 2)
	f.Add("#h1|para one. two.|#h2|x\xffy|z", 5, 1)
	f.Fuzz(func(t *testing.T, text string, size, overlap int) {
		size = size%64 + 1
		if size <= 0 {
			size += 64
		}
		overlap = overlap % size
		if overlap == 0 {
			overlap = -1
		}
		s, err := New(Options{Size: size, Overlap: overlap})
		if err != nil {
			t.Skip()
		}
		checkChunks(t, text, s.Split(text), s.Size(), s.Overlap())
		// The same text as a document: blocks at every "|", headings at
		// lines starting with "#", pages counting up.
		var doc docparse.Document
		var path []string
		for i, part := range strings.Split(text, "|") {
			b := docparse.Block{Text: part, HeadingPath: path, Page: i / 2}
			if strings.HasPrefix(part, "#") {
				path = []string{part}
				b.HeadingPath, b.Heading = path, true
			}
			doc.Blocks = append(doc.Blocks, b)
		}
		dchunks := s.SplitDocument(doc)
		checkChunks(t, doc.Text(), dchunks, s.Size(), s.Overlap())
		for i, c := range dchunks {
			if c.Page > c.PageEnd {
				t.Errorf("chunk %d: pages %d-%d", i, c.Page, c.PageEnd)
			}
		}
		if got, want := isValidUTF8(text), utf8.ValidString(text); got != want {
			t.Errorf("isValidUTF8(%q) = %v, want %v", text, got, want)
		}
		if v := validUTF8(text); runeCount(v, len(v)) != utf8.RuneCountInString(v) {
			t.Errorf("runeCount(%q) = %d, want %d", v, runeCount(v, len(v)), utf8.RuneCountInString(v))
		}
	})
}

func TestRuneCount(t *testing.T) {
	base := "héllo, 世界! 𝄞 " + strings.Repeat("ascii only text ", 5) + strings.Repeat("中文字符", 20)
	for n := 0; n <= len(base); n++ {
		s := validUTF8(base[:n])
		want := utf8.RuneCountInString(s)
		if got := runeCount(s, 1<<30); got != want {
			t.Fatalf("runeCount(%q) = %d, want %d", s, got, want)
		}
		for _, limit := range []int{0, want - 1, want, want + 1} {
			got := runeCount(s, limit)
			if want <= limit && got != want || want > limit && got != limit+1 {
				t.Fatalf("runeCount(%q, %d) = %d, want %d (or limit+1 when over)", s, limit, got, want)
			}
		}
	}
}

func TestIsValidUTF8(t *testing.T) {
	tests := []string{
		"", "ascii only, longer than eight bytes", "中文字符和标点。", "\xe0\xa0\x80", "\xe0\x80\x80",
		"\xed\x9f\xbf", "\xed\xa0\x80", "\xef\xbf\xbf", "\xef\xbf", "abc\xe4\xb8", "\xf0\x9d\x84\x9e",
		"\xf4\x90\x80\x80", "\xc0\xaf", "\xe4\xb8\xad\xff", "12345678\x80", "\xee\x80\x80\xec\xbf\xbf",
	}
	for _, s := range tests {
		if got, want := isValidUTF8(s), utf8.ValidString(s); got != want {
			t.Errorf("isValidUTF8(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestParseThenSplit(t *testing.T) {
	md := "# 员工手册\n\n欢迎加入公司。本手册说明主要制度，请仔细阅读。\n\n## 休假\n\n" +
		strings.Repeat("年假按工龄计算，每年五至十五天。请提前两周申请；紧急情况除外。", 6) +
		"\n\n## Travel\n\nBook through the portal. Keep every receipt! Claims over 5,000 need a director.\n"
	doc, err := docparse.Parse(t.Context(), docparse.Input{Data: []byte(md), FileName: "handbook.md"}, docparse.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Size: 60, Overlap: 20})
	if err != nil {
		t.Fatal(err)
	}
	chunks := s.SplitDocument(doc)
	checkChunks(t, doc.Text(), chunks, 60, 20)
	paths := map[string]int{}
	for _, c := range chunks {
		paths[strings.Join(c.HeadingPath, " > ")]++
		if strings.Contains(c.Text, "年假") && !reflect.DeepEqual(c.HeadingPath, []string{"员工手册", "休假"}) {
			t.Errorf("chunk %q under %q, want 员工手册 > 休假", c.Text, c.HeadingPath)
		}
		if strings.Contains(c.Text, "receipt") && !reflect.DeepEqual(c.HeadingPath, []string{"员工手册", "Travel"}) {
			t.Errorf("chunk %q under %q, want 员工手册 > Travel", c.Text, c.HeadingPath)
		}
	}
	// The 休假 section (about 190 runes) needs several 60-rune chunks; the
	// others fit in one each.
	if paths["员工手册"] != 1 || paths["员工手册 > 休假"] < 4 || paths["员工手册 > Travel"] != 2 {
		t.Errorf("chunks per section = %v", paths)
	}
}
