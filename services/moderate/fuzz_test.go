package moderate

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzNextCut checks that NextCut never panics, cuts inside the buffer at
// a rune boundary, and is prefix-stable: a cut found in a prefix is the cut
// of the whole text.
func FuzzNextCut(f *testing.F) {
	for _, s := range []string{"Hello there. Next", "你好。我们", "3.14 is pi", "a\r\nb", "x... y", "“好。”", "\xff\xfe.", strings.Repeat("字", 50)} {
		f.Add(s, 8, 3)
	}
	f.Fuzz(func(t *testing.T, buf string, maxRunes, split int) {
		if maxRunes > 1000 {
			maxRunes = 1000
		}
		for _, final := range []bool{false, true} {
			n, ok := NextCut(buf, maxRunes, final)
			if !ok {
				if final && buf != "" {
					t.Fatalf("NextCut(%q, final) found no cut", buf)
				}
				continue
			}
			if n <= 0 || n > len(buf) {
				t.Fatalf("NextCut(%q) = %d, out of range", buf, n)
			}
			if utf8.ValidString(buf) && !utf8.ValidString(buf[:n]) {
				t.Fatalf("NextCut(%q) = %d splits a rune", buf, n)
			}
		}
		if len(buf) == 0 {
			return
		}
		p := split % (len(buf) + 1)
		if p < 0 {
			p = -p
		}
		// Deltas are JSON strings, so valid UTF-8: split at rune starts.
		for p > 0 && p < len(buf) && !utf8.RuneStart(buf[p]) {
			p--
		}
		if pn, ok := NextCut(buf[:p], maxRunes, false); ok {
			if n, ok2 := NextCut(buf, maxRunes, false); !ok2 || n != pn {
				t.Fatalf("prefix %q cut at %d, whole %q at %d (%v)", buf[:p], pn, buf, n, ok2)
			}
		}
	})
}

// FuzzStream checks, with the real policy, that the moderated stream is the
// same however the answer is split into deltas, that its seq is gapless,
// and that the completed text is the concatenation of the deltas.
func FuzzStream(f *testing.F) {
	p := newTestPolicy(f, Limits{})
	for _, s := range []string{
		"请拨打 138-1234-5678。Mail a@b.com. Card 4111 1111 1111 1111!",
		"ID 11010519491231002X; phone +44 20 7946 0958\nok",
		"no pii here at all", "。。。", "",
	} {
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, text string, size uint8) {
		if len(text) > 2000 {
			return
		}
		step := int(size%16) + 1
		var deltas []string
		for i := 0; i < len(text); i += step {
			deltas = append(deltas, text[i:min(i+step, len(text))])
		}
		whole, wdone := moderated(t, feed(t, NewService(p, Config{MaxSentenceRunes: 32}), "t", "r", 0, []string{text}, completedFor("r", "t", []string{text})))
		split, sdone := moderated(t, feed(t, NewService(p, Config{MaxSentenceRunes: 32}), "t", "r", 0, deltas, completedFor("r", "t", deltas)))
		if strings.Join(whole, "\x00") != strings.Join(split, "\x00") {
			t.Fatalf("split by %d: %q, whole: %q", step, split, whole)
		}
		if wdone == nil || sdone == nil || wdone.Text != strings.Join(whole, "") || sdone.Text != wdone.Text {
			t.Fatalf("completed text differs from its deltas")
		}
	})
}
