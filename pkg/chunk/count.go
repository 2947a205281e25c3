package chunk

import "math/bits"

const (
	hiBits = 0x8080808080808080
)

// runeCount returns the number of runes in s, or limit+1 as soon as it is
// known to exceed limit. s must be valid UTF-8: then every byte that is not a
// continuation byte (10xxxxxx) starts a rune. Eight bytes are counted at a
// time.
func runeCount(s string, limit int) int {
	n := 0
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		// A continuation byte has bit 7 set and bit 6 clear.
		cont := w & hiBits &^ (w << 1)
		n += 8 - bits.OnesCount64(cont)
		if n > limit {
			return limit + 1
		}
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
