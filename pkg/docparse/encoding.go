package docparse

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/simplifiedchinese"
	xunicode "golang.org/x/text/encoding/unicode"
)

// Encoding names reported in Document.Encoding.
const (
	encUTF8    = "utf-8"
	encUTF16LE = "utf-16le"
	encUTF16BE = "utf-16be"
	encGB18030 = "gb18030"
	// encWindows1252 also covers ISO-8859-1, which it extends.
	encWindows1252 = "windows-1252"
)

var (
	bomUTF8    = []byte{0xEF, 0xBB, 0xBF}
	bomUTF16LE = []byte{0xFF, 0xFE}
	bomUTF16BE = []byte{0xFE, 0xFF}
)

// hasBOM reports whether b starts with a UTF-8 or UTF-16 byte order mark.
func hasBOM(b []byte) bool {
	return bytes.HasPrefix(b, bomUTF8) || bytes.HasPrefix(b, bomUTF16LE) || bytes.HasPrefix(b, bomUTF16BE)
}

// decodeText converts data to valid UTF-8 and names the source encoding.
// Order: byte order mark, declared charset (unless the bytes are valid
// UTF-8), BOM-less UTF-16 (by the pattern
// of zero bytes), valid UTF-8, GB18030 (a superset of GBK and GB2312) when it
// decodes cleanly into mostly CJK text, and last UTF-8 with invalid bytes
// replaced by U+FFFD. It never fails.
func decodeText(data []byte, charset string) (string, string) {
	switch {
	case bytes.HasPrefix(data, bomUTF8):
		return strings.ToValidUTF8(string(data[3:]), "\uFFFD"), encUTF8
	case bytes.HasPrefix(data, bomUTF16LE):
		return decodeWith(xunicode.UTF16(xunicode.LittleEndian, xunicode.IgnoreBOM), data[2:]), encUTF16LE
	case bytes.HasPrefix(data, bomUTF16BE):
		return decodeWith(xunicode.UTF16(xunicode.BigEndian, xunicode.IgnoreBOM), data[2:]), encUTF16BE
	}
	// A declared charset is honoured unless the bytes are valid UTF-8: pages
	// and exports that declare a legacy charset but are really UTF-8 are
	// common, and legacy-encoded non-ASCII text is almost never valid UTF-8.
	if charset != "" && charset != "utf-8" && charset != "utf8" && charset != "us-ascii" && !utf8.Valid(data) {
		if enc, err := htmlindex.Get(charset); err == nil {
			name, _ := htmlindex.Name(enc)
			if name == "gbk" || name == "gb18030" {
				name = encGB18030
				enc = simplifiedchinese.GB18030
			}
			if name != encUTF8 {
				return decodeWith(enc, data), name
			}
		}
	}
	// BOM-less UTF-16 of mostly-ASCII text is valid UTF-8 full of NULs, so
	// check its shape first.
	if le, be := utf16Shape(data); le {
		return decodeWith(xunicode.UTF16(xunicode.LittleEndian, xunicode.IgnoreBOM), data), encUTF16LE
	} else if be {
		return decodeWith(xunicode.UTF16(xunicode.BigEndian, xunicode.IgnoreBOM), data), encUTF16BE
	}
	if utf8.Valid(data) {
		return string(data), encUTF8
	}
	if s, ok := decodeGB18030(data); ok {
		return s, encGB18030
	}
	// Western legacy text (Latin-1, Windows-1252: old READMEs, licences
	// with "Copyright \xa9") is never valid UTF-8; Windows-1252 maps every
	// byte but five, and C1 control bytes mean it is something else.
	if s, ok := decodeWindows1252(data); ok {
		return s, encWindows1252
	}
	return strings.ToValidUTF8(string(data), "\uFFFD"), encUTF8
}

// decodeWith decodes data with enc, replacing undecodable bytes.
func decodeWith(enc encoding.Encoding, data []byte) string {
	out, err := enc.NewDecoder().Bytes(data)
	if err != nil {
		return strings.ToValidUTF8(string(data), "\uFFFD")
	}
	return strings.ToValidUTF8(string(out), "\uFFFD")
}

// utf16Shape reports whether data looks like BOM-less UTF-16 little or big
// endian: mostly-ASCII UTF-16 has a zero in every other byte.
func utf16Shape(data []byte) (le, be bool) {
	n := len(data)
	if n < 4 || n%2 != 0 {
		return false, false
	}
	if n > 4096 {
		n = 4096
	}
	var evenZero, oddZero int
	for i := 0; i+1 < n; i += 2 {
		if data[i] == 0 {
			evenZero++
		}
		if data[i+1] == 0 {
			oddZero++
		}
	}
	pairs := n / 2
	return oddZero*10 >= pairs*7 && evenZero*10 < pairs, evenZero*10 >= pairs*7 && oddZero*10 < pairs
}

// decodeWindows1252 decodes data as Windows-1252 when it is mostly ASCII
// (legacy Western text) and has none of the five bytes that Windows-1252
// leaves undefined.
func decodeWindows1252(data []byte) (string, bool) {
	high := 0
	for _, c := range data {
		switch {
		case c == 0x81 || c == 0x8D || c == 0x8F || c == 0x90 || c == 0x9D:
			return "", false
		case c >= 0x80:
			high++
		}
	}
	if high*5 > len(data) {
		return "", false
	}
	return decodeWith(charmap.Windows1252, data), true
}

// decodeGB18030 decodes data as GB18030 and accepts the result when almost no
// byte sequence was invalid and the non-ASCII text is mostly Han or CJK
// punctuation, which is what GBK-encoded Chinese looks like. Latin-1 or
// corrupt bytes fail the test.
func decodeGB18030(data []byte) (string, bool) {
	out, err := simplifiedchinese.GB18030.NewDecoder().Bytes(data)
	if err != nil {
		return "", false
	}
	s := string(out)
	var bad, nonASCII, cjk int
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			bad++
		case r < utf8.RuneSelf:
		default:
			nonASCII++
			if unicode.Is(unicode.Han, r) || (r >= 0x3000 && r <= 0x303F) || (r >= 0xFF00 && r <= 0xFFEF) {
				cjk++
			}
		}
	}
	if nonASCII == 0 || bad*200 > nonASCII || cjk*10 < nonASCII*6 {
		return "", false
	}
	return strings.ToValidUTF8(s, "\uFFFD"), true
}
