package moderate

import (
	"bufio"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mtibben/confusables"
	"golang.org/x/text/unicode/norm"
)

// tsCharacters is OpenCC's traditional → simplified character table
// (Apache-2.0, see data/NOTICE): one "traditional<TAB>simplified…" a line.
//
//go:embed data/TSCharacters.txt
var tsCharacters string

// Normalizer folds text into the views the policies match on. It is
// immutable after NewNormalizer and safe for concurrent use.
type Normalizer struct {
	t2s map[rune]rune
}

// NewNormalizer loads the traditional → simplified table.
func NewNormalizer() *Normalizer {
	n := &Normalizer{t2s: make(map[rune]rune, 4200)}
	sc := bufio.NewScanner(strings.NewReader(tsCharacters))
	for sc.Scan() {
		from, to, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			continue
		}
		f, _ := utf8.DecodeRuneInString(from)
		t, _ := utf8.DecodeRuneInString(to)
		if f != utf8.RuneError && t != utf8.RuneError {
			n.t2s[f] = t
		}
	}
	return n
}

// Views is what the injection rules see of one text.
type Views struct {
	// Text is the folded text: NFKC, lower case, homoglyphs mapped to
	// their Latin skeleton, combining marks dropped, zero-width and other
	// format characters turned into spaces (so words stay apart),
	// spaced/dotted letters joined ("i g n o r e" → "ignore"), leetspeak
	// folded inside words ("1gn0r3" → "ignore"), traditional Chinese
	// mapped to simplified, whitespace runs collapsed.
	Text string
	// Joined is Text with format characters removed instead, so a word
	// split by a zero-width space ("ig\u200Bnore") is whole again; equal to
	// Text when there were none.
	Joined string
	// Compact is Text without anything but letters and digits, for
	// scripts written without spaces ("忽 略.以 上 指 令").
	Compact string
	// Decoded holds base64 and hex runs that decode to readable text,
	// each folded the same way.
	Decoded []string
	// Evasion lists the obfuscations seen: "zero_width", "homoglyph",
	// "combining", "spaced_letters", "leet", "encoded".
	Evasion []string
}

var (
	spacedLetters = regexp.MustCompile(`\b(?:[a-z][ .\-_*·/|]){2,}[a-z]\b`)
	leetWord      = regexp.MustCompile(`[a-z0-9@$]*[a-z][a-z0-9@$]*`)
	base64Run     = regexp.MustCompile(`[A-Za-z0-9+/_-]{16,}={0,2}`)
	hexRun        = regexp.MustCompile(`(?:\\x|0x)?[0-9a-fA-F]{2}(?:[ :]?(?:\\x|0x)?[0-9a-fA-F]{2}){7,}`)
	hexSep        = regexp.MustCompile(`\\x|0x|[ :]`)
)

var leet = map[byte]byte{'0': 'o', '1': 'i', '3': 'e', '4': 'a', '5': 's', '7': 't', '8': 'b', '@': 'a', '$': 's'}

// Views folds s. Decoded payloads are folded once more but not decoded
// again: one level of encoding is checked.
func (n *Normalizer) Views(s string) Views {
	v, raw := n.fold(s)
	for _, d := range decodeRuns(raw) {
		dv, _ := n.fold(d)
		v.Decoded = append(v.Decoded, dv.Text)
	}
	if len(v.Decoded) > 0 {
		v.Evasion = append(v.Evasion, "encoded")
	}
	return v
}

// fold computes the views of s but Decoded; raw is s after NFKC with format
// characters removed and case kept, where encoded runs are looked for.
func (n *Normalizer) fold(s string) (v Views, raw string) {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var text, joined, rawb strings.Builder
	text.Grow(len(s))
	joined.Grow(len(s))
	var zeroWidth, homoglyph, combining bool
	space := false
	emit := func(r rune) {
		if space {
			if text.Len() > 0 {
				text.WriteByte(' ')
			}
			space = false
		}
		text.WriteRune(r)
		joined.WriteRune(r)
	}
	var buf [8]byte
	for _, r0 := range s {
		var folded string
		switch {
		case r0 < utf8.RuneSelf:
			buf[0] = byte(r0)
			folded = string(buf[:1])
		case nfkcStable(r0):
			folded = string(r0)
		default:
			folded = norm.NFKC.String(string(r0))
		}
		rawb.WriteString(folded)
		for _, r := range folded {
			switch {
			case unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Variation_Selector, r):
				zeroWidth = true
				space = true
				continue
			case unicode.IsSpace(r) || unicode.IsControl(r):
				space = true
				if joined.Len() > 0 {
					joined.WriteByte(' ')
				}
				continue
			case unicode.In(r, unicode.Mn, unicode.Me):
				combining = true
				continue
			}
			r = unicode.ToLower(r)
			if r >= utf8.RuneSelf {
				if t, ok := n.t2s[r]; ok {
					emit(t)
					continue
				}
				if sk, ok := skeleton(r); ok {
					if !unicode.Is(unicode.Latin, r) {
						homoglyph = true
					}
					for _, c := range sk {
						emit(c)
					}
					continue
				}
			}
			emit(r)
		}
	}
	v.Text = strings.TrimSpace(text.String())
	v.Joined = collapseSpaces(joined.String())
	if zeroWidth {
		v.Evasion = append(v.Evasion, "zero_width")
	}
	if homoglyph {
		v.Evasion = append(v.Evasion, "homoglyph")
	}
	if combining {
		v.Evasion = append(v.Evasion, "combining")
	}
	var spaced, leeted bool
	fix := func(t string) string {
		if !maySpaced(t) && !strings.ContainsAny(t, "0134578@$") {
			return t // neither rule can apply: skip both scans
		}
		t = spacedLetters.ReplaceAllStringFunc(t, func(m string) string {
			spaced = true
			return strings.Map(func(r rune) rune {
				if r >= 'a' && r <= 'z' {
					return r
				}
				return -1
			}, m)
		})
		return leetWord.ReplaceAllStringFunc(t, func(m string) string {
			if !strings.ContainsAny(m, "0134578@$") {
				return m
			}
			b := []byte(m)
			for i, c := range b {
				if l, ok := leet[c]; ok {
					b[i] = l
				}
			}
			leeted = true
			return string(b)
		})
	}
	v.Text = fix(v.Text)
	if zeroWidth {
		v.Joined = fix(v.Joined)
	} else {
		v.Joined = v.Text
	}
	if spaced {
		v.Evasion = append(v.Evasion, "spaced_letters")
	}
	if leeted {
		v.Evasion = append(v.Evasion, "leet")
	}
	v.Compact = strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return r
		}
		return -1
	}, v.Text)
	return v, rawb.String()
}

// maySpaced says whether t may hold spaced letters ("i g n"): a letter,
// a separator, a letter and a separator in a row, or the two-byte "·"
// separator anywhere.
func maySpaced(t string) bool {
	if strings.Contains(t, "·") {
		return true
	}
	sep := func(c byte) bool { return strings.IndexByte(" .-_*/|", c) >= 0 }
	for i := 0; i+3 < len(t); i++ {
		if t[i] >= 'a' && t[i] <= 'z' && sep(t[i+1]) && t[i+2] >= 'a' && t[i+2] <= 'z' && sep(t[i+3]) {
			return true
		}
	}
	return false
}

// skeleton maps a non-ASCII rune to its UTS #39 confusables skeleton when
// that is plain ASCII (Cyrillic "а" → "a", "ℐ" → "l"); other runes, CJK
// among them, keep their identity.
func skeleton(r rune) (string, bool) {
	if unicode.Is(unicode.Han, r) || unicode.In(r, unicode.Hiragana, unicode.Katakana, unicode.Hangul) {
		return "", false
	}
	sk := strings.Map(func(c rune) rune {
		if unicode.In(c, unicode.Mn, unicode.Me) {
			return -1
		}
		return c
	}, confusables.Skeleton(string(r)))
	if sk == "" || sk == string(r) {
		return "", false
	}
	for i := 0; i < len(sk); i++ {
		if sk[i] >= utf8.RuneSelf {
			return "", false
		}
	}
	return strings.ToLower(sk), true
}

// nfkcStable says whether NFKC leaves r alone for certain without asking
// the tables: unified CJK ideographs (not the compatibility ones) and
// Hangul syllables, most of Chinese text.
func nfkcStable(r rune) bool {
	return r >= 0x4E00 && r <= 0x9FFF || r >= 0x3400 && r <= 0x4DBF || r >= 0xAC00 && r <= 0xD7A3
}

func collapseSpaces(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// decodeRuns returns the base64 and hex runs of s that decode to mostly
// printable UTF-8 text.
func decodeRuns(s string) []string {
	var out []string
	// Each pattern needs 16 bytes in a row of its alphabet; most text has
	// no such run, and then its regular expression does not run.
	if hasRun(s, 16, func(c byte) bool {
		return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '_' || c == '-'
	}) {
		for _, m := range base64Run.FindAllString(s, 8) {
			t := strings.TrimRight(m, "=")
			for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
				if b, err := enc.DecodeString(t); err == nil && readable(b) {
					out = append(out, string(b))
					break
				}
			}
		}
	}
	if !hasRun(s, 16, func(c byte) bool {
		return c >= 'A' && c <= 'F' || c >= 'a' && c <= 'f' || c >= '0' && c <= '9' || c == 'x' || c == '\\' || c == ' ' || c == ':'
	}) {
		return out
	}
	for _, m := range hexRun.FindAllString(s, 8) {
		if b, err := hex.DecodeString(hexSep.ReplaceAllString(m, "")); err == nil && readable(b) {
			out = append(out, string(b))
		}
	}
	return out
}

// hasRun says whether s has n bytes in a row for which in is true.
func hasRun(s string, n int, in func(byte) bool) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if !in(s[i]) {
			run = 0
		} else if run++; run >= n {
			return true
		}
	}
	return false
}

// readable says whether b is UTF-8 text of which at least 90 % of the
// runes are printable: random bytes and binary payloads are not checked.
func readable(b []byte) bool {
	if len(b) < 6 || !utf8.Valid(b) {
		return false
	}
	total, ok := 0, 0
	for _, r := range string(b) {
		total++
		if unicode.IsPrint(r) || r == '\n' || r == '\t' {
			ok++
		}
	}
	return ok*10 >= total*9 && strings.ContainsFunc(string(b), unicode.IsLetter)
}
