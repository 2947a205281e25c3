package chunk

import (
	"math/bits"
	"unicode/utf8"
)

const hiBits = 0x8080808080808080

// load64 reads 8 bytes of s at i, little-endian (compiles to one load).
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// continuations returns how many bytes of w are UTF-8 continuation bytes
// (10xxxxxx): bit 7 set and bit 6 clear.
func continuations(w uint64) int {
	return bits.OnesCount64(w & hiBits &^ (w << 1))
}

// runeCount returns the number of runes in s, or limit+1 as soon as it is
// known to exceed limit. s must be valid UTF-8: then every byte that is not a
// continuation byte starts a rune. It counts 32 bytes per step.
func runeCount(s string, limit int) int {
	n, i := 0, 0
	for ; i+32 <= len(s); i += 32 {
		w0, w1, w2, w3 := load64(s, i), load64(s, i+8), load64(s, i+16), load64(s, i+24)
		if (w0|w1|w2|w3)&hiBits == 0 {
			n += 32 // all ASCII
		} else {
			n += 32 - continuations(w0) - continuations(w1) - continuations(w2) - continuations(w3)
		}
		if n > limit {
			return limit + 1
		}
	}
	for ; i+8 <= len(s); i += 8 {
		n += 8 - continuations(load64(s, i))
	}
	for ; i < len(s); i++ {
		if s[i]&0xC0 != 0x80 {
			n++
		}
	}
	if n > limit {
		return limit + 1
	}
	return n
}

// isValidUTF8 reports whether s is valid UTF-8, like utf8.ValidString but
// faster on CJK text: ASCII runs are checked 8 bytes at a time, and the
// 3-byte sequences of U+1000–U+CFFF and U+E000–U+FFFF (lead bytes E1–EC,
// EE, EF, which admit any continuation bytes) without decoding.
func isValidUTF8(s string) bool {
	n := len(s)
	i := 0
	for i < n {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			for i+8 <= n && load64(s, i)&hiBits == 0 {
				i += 8
			}
			continue
		}
		if i+2 < n && s[i+1]&0xC0 == 0x80 && s[i+2]&0xC0 == 0x80 && (c-0xE1 <= 0xEC-0xE1 || c >= 0xEE) && c <= 0xEF {
			i += 3
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && w == 1 {
			return false
		}
		i += w
	}
	return true
}

// isASCII reports whether s holds only ASCII bytes, 32 bytes at a time.
func isASCII(s string) bool {
	i := 0
	for ; i+32 <= len(s); i += 32 {
		if (load64(s, i)|load64(s, i+8)|load64(s, i+16)|load64(s, i+24))&hiBits != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
