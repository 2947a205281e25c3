package moderate

import (
	"math/big"
	"net"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/text/unicode/norm"
)

// Entity is a piece of personal data a recognizer found, with the evidence
// the output policy weighs: a base score (how strongly format and
// validation speak for the kind), and whether words around it speak for
// (Positive) or against (Negative) it. Start and End are byte offsets in
// the text as given.
type Entity struct {
	ID         int     `json:"id"`
	Kind       string  `json:"kind"`
	Start      int     `json:"-"`
	End        int     `json:"-"`
	Score      float64 `json:"score"`
	Positive   bool    `json:"positive"`
	Negative   bool    `json:"negative"`
	NegativeBy string  `json:"negative_by,omitempty"`
}

// folded is a text with full-width forms, look-alike dashes and dots and
// format characters folded for matching, and a map back to the original.
type folded struct {
	s string
	// start and end give, for each byte of s, the original byte span of
	// the rune it came from; both nil when s is the original (ASCII and
	// CJK text, most of it), which saves two slices per text.
	start, end []int
	orig       string
}

func foldForPII(orig string) folded {
	f := folded{orig: orig}
	if !strings.ContainsFunc(orig, func(r rune) bool { return r >= utf8.RuneSelf && !nfkcStable(r) }) {
		f.s = orig
		return f
	}
	var b strings.Builder
	b.Grow(len(orig))
	for i, r := range orig {
		size := utf8.RuneLen(r)
		if r == utf8.RuneError {
			size = 1
		}
		var out string
		switch {
		case r < utf8.RuneSelf || nfkcStable(r):
			out = string(r)
		case unicode.Is(unicode.Cf, r):
			continue // zero-width characters inside a number glue it back
		case r == '\u2010' || r == '\u2011' || r == '\u2012' || r == '\u2013' || r == '\u2014' || r == '\u2212' || r == '\uFE63' || r == '\uFF0D':
			out = "-"
		case r == '\u00B7' || r == '\u30FB' || r == '\uFF0E' || r == '\u2024':
			out = "."
		case unicode.IsSpace(r):
			out = " "
		default:
			out = norm.NFKC.String(string(r))
		}
		b.WriteString(out)
		for range len(out) {
			f.start = append(f.start, i)
			f.end = append(f.end, i+size)
		}
	}
	f.s = b.String()
	return f
}

// span maps a byte span of the folded text back to the original.
func (f folded) span(s, e int) (int, int) {
	if f.start == nil {
		return s, e
	}
	return f.start[s], f.end[e-1]
}

var (
	emailRe = regexp.MustCompile(`[\p{L}\p{N}._%+\-]+@[\p{L}\p{N}\-]+(?:\.[\p{L}\p{N}\-]+)*\.\p{L}{2,}`)
	// An obfuscated address: "at"/"dot" spelled or bracketed, "[@]", 艾特/点.
	obfAt     = `(?:\s*[\[\(\{<]\s*(?:at|@)\s*[\]\)\}>]\s*|\s+at\s+|\s*艾特\s*)`
	obfDot    = `(?:\s*[\[\(\{<]\s*(?:dot|\.)\s*[\]\)\}>]\s*|\s+dot\s+|\s*点\s*|\.)`
	obfEmail  = regexp.MustCompile(`(?i)\b[a-z0-9][a-z0-9._%+\-]*` + obfAt + `[a-z0-9\-]+(?:` + obfDot + `[a-z0-9\-]+)*` + obfDot + `(?:com|org|net|edu|gov|io|cn|co|uk|de|fr|jp|info|biz|me|us|ca|au|ru|in|hk|tw|sg)\b`)
	spelledAt = regexp.MustCompile(`(?i)[\[\(\{<]\s*(?:at|@)|艾特`)
	spelled   = regexp.MustCompile(`(?i)[\[\(\{<]\s*(?:dot|\.)|\sdot\s|点`)
	id18Re    = regexp.MustCompile(`[1-9]\d{5}[ \-]?(?:18|19|20)\d{2}[ \-]?(?:0[1-9]|1[0-2])[ \-]?(?:0[1-9]|[12]\d|3[01])[ \-]?\d{3}[0-9Xx]`)
	id15Re    = regexp.MustCompile(`\b[1-9]\d{5}\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}\b`)
	cardRe    = regexp.MustCompile(`\d(?:[ \-.]?\d){12,18}`)
	ibanRe    = regexp.MustCompile(`(?i)\b[a-z]{2}\d{2}(?: ?[a-z0-9]{4}){2,7}(?: ?[a-z0-9]{1,3})?\b`)
	ssnRe     = regexp.MustCompile(`\b\d{3}([- ])\d{2}([- ])\d{4}\b`)
	ipv4Re    = regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}\b`)
	ipv6Re    = regexp.MustCompile(`(?i)(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}`)
	passRe    = regexp.MustCompile(`\b(?:[A-Z]{1,2}\d{7,8}|\d{9})\b`)
	phoneRe   = regexp.MustCompile(`(?:\+|\(|\b)\d[\d \-.()/]{5,20}\d`)
)

// contextWords speak for a kind when they come shortly before (or after)
// a candidate.
var contextWords = map[string][]string{
	"phone":     {"phone", "tel", "mobile", "cell", "call", "fax", "contact", "whatsapp", "dial", "电话", "手机", "联系", "致电", "拨打", "热线", "微信"},
	"email":     {"email", "e-mail", "mail", "邮箱", "邮件"},
	"id_card":   {"身份证", "id card", "identity", "resident id", "证件", "id number", "id no"},
	"bank_card": {"card", "visa", "mastercard", "amex", "credit", "debit", "银行卡", "信用卡", "卡号", "借记卡"},
	"iban":      {"iban", "account", "bank", "账户", "账号"},
	"ssn":       {"ssn", "social security", "社会安全"},
	"ip":        {"ip", "logged in from", "login from", "visitor", "client address", "登录", "地址"},
	"passport":  {"passport", "护照"},
}

// negativeWords mark ordinary numbers: ids of orders, invoices, books,
// versions; and amounts.
var negativeWords = []string{"order", "invoice", "isbn", "tracking", "ticket", "ref", "reference", "serial", "sku",
	"part no", "model", "version", "build", "release", "po number", "case number", "batch", "quantity", "price", "total",
	"订单", "发票", "单号", "编号", "流水号", "版本", "型号", "批次", "数量", "价格", "合计", "快递"}

// containsWord says whether s contains one of words, English ones as
// whole words, ignoring ASCII case (strings.Contains is much cheaper here
// than one regular expression with every word).
func containsWord(s string, words []string) bool {
	s = asciiLower(s)
	for _, w := range words {
		for off := 0; ; {
			i := strings.Index(s[off:], w)
			if i < 0 {
				break
			}
			i += off
			if w[0] >= utf8.RuneSelf || (!wordByteAt(s, i-1) && !wordByteAt(s, i+len(w))) {
				return true
			}
			off = i + 1
		}
	}
	return false
}

func wordByteAt(s string, i int) bool {
	if i < 0 || i >= len(s) {
		return false
	}
	c := s[i]
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_'
}

func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

var currencyRe = regexp.MustCompile(`(?i)(?:[¥￥$€£]|元|rmb|cny|usd|eur|gbp|yuan|dollars?)`)

// Recognize finds personal data in text. Overlapping candidates are
// resolved by score, so a span is claimed by the kind whose validation and
// context words speak for it most.
func Recognize(text string) []Entity {
	f := foldForPII(text)
	s := f.s
	var cands []Entity
	add := func(kind string, fs, fe int, score float64) {
		st, en := f.span(fs, fe)
		cands = append(cands, Entity{Kind: kind, Start: st, End: en, Score: score})
	}
	// Cheap checks first: each recognizer needs an "@", enough digits or
	// a colon, and most sentences have none of these, so their regular
	// expressions never run.
	digits := countDigits(s)
	if strings.IndexByte(s, '@') >= 0 {
		for _, m := range emailRe.FindAllStringIndex(s, -1) {
			add("email", m[0], m[1], 0.9)
		}
	}
	if obfuscatedAt(s) {
		for _, m := range obfEmail.FindAllStringIndex(s, -1) {
			t := s[m[0]:m[1]]
			if spelledAt.MatchString(t) || spelled.MatchString(t) {
				add("email", m[0], m[1], 0.8)
			}
		}
	}
	if digits >= 2 {
		recognizeNumbers(s, digits, add)
	}
	if strings.Count(s, ":") >= 2 {
		for _, m := range ipv6Re.FindAllStringIndex(s, -1) {
			t := s[m[0]:m[1]]
			if strings.Count(t, ":") >= 2 && len(t) >= 6 {
				if ip := net.ParseIP(t); ip != nil && ip.To4() == nil {
					add("ip", m[0], m[1], ipScore(ip))
				}
			}
		}
	}
	for i := range cands {
		c := &cands[i]
		before := text[backRunes(text, c.Start, 30):c.Start]
		after := text[c.End:forwardRunes(text, c.End, 12)]
		c.Positive = containsWord(before, contextWords[c.Kind]) || containsWord(after, contextWords[c.Kind])
		c.NegativeBy = negativeContext(before, after, text[c.Start:c.End], c.Kind)
		c.Negative = c.NegativeBy != ""
	}
	return resolve(cands)
}

// recognizeNumbers runs the recognizers of numbers on the folded text s,
// which holds digits ASCII digits: each only when s has as many digits as
// its shortest match.
func recognizeNumbers(s string, digits int, add func(kind string, fs, fe int, score float64)) {
	if digits >= 17 {
		for _, m := range id18Re.FindAllStringIndex(s, -1) {
			if digitNeighbour(s, m[0], m[1]) {
				continue
			}
			if idChecksum(onlyDigitsX(s[m[0]:m[1]])) {
				add("id_card", m[0], m[1], 0.95)
			}
		}
	}
	if digits >= 15 {
		for _, m := range id15Re.FindAllStringIndex(s, -1) {
			add("id_card", m[0], m[1], 0.4)
		}
	}
	if digits >= 13 {
		for _, m := range cardRe.FindAllStringIndex(s, -1) {
			d := onlyDigits(s[m[0]:m[1]])
			if digitNeighbour(s, m[0], m[1]) || !luhn(d) || (m[0] > 0 && s[m[0]-1] == '+') || strings.HasPrefix(d, "00") {
				continue
			}
			score := 0.6
			if strings.IndexByte("23456", d[0]) >= 0 && len(d) >= 15 {
				score = 0.9
			}
			add("bank_card", m[0], m[1], score)
		}
	}
	for _, m := range ibanRe.FindAllStringIndex(s, -1) {
		if ibanValid(s[m[0]:m[1]]) {
			add("iban", m[0], m[1], 0.95)
		}
	}
	if digits >= 9 {
		for _, m := range ssnRe.FindAllStringSubmatchIndex(s, -1) {
			t := s[m[0]:m[1]]
			if s[m[2]:m[3]] == s[m[4]:m[5]] && ssnValid(onlyDigits(t)) {
				add("ssn", m[0], m[1], 0.6)
			}
		}
	}
	if digits >= 4 {
		for _, m := range ipv4Re.FindAllStringIndex(s, -1) {
			if ip := net.ParseIP(s[m[0]:m[1]]); ip != nil && !adjacentDot(s, m[0], m[1]) {
				add("ip", m[0], m[1], ipScore(ip))
			}
		}
	}
	if digits < 7 {
		return
	}
	for _, m := range passRe.FindAllStringIndex(s, -1) {
		add("passport", m[0], m[1], 0.2)
	}
	cjk := strings.ContainsFunc(s, func(r rune) bool { return unicode.Is(unicode.Han, r) })
	for _, m := range phoneRe.FindAllStringIndex(s, -1) {
		if score, e := phoneScore(s, m[0], m[1], cjk); score > 0 {
			add("phone", m[0], e, score)
		}
	}
}

func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n++
		}
	}
	return n
}

// obfuscatedAt says whether s may hold the "at" of an obfuscated e-mail
// address (see obfAt): a bracket, a word "at" between spaces, or 艾特.
func obfuscatedAt(s string) bool {
	if strings.ContainsAny(s, "[({<") || strings.Contains(s, "艾特") {
		return true
	}
	for i := 1; i+2 < len(s); i++ {
		if (s[i] == 'a' || s[i] == 'A') && (s[i+1] == 't' || s[i+1] == 'T') && asciiSpace(s[i-1]) && asciiSpace(s[i+2]) {
			return true
		}
	}
	return false
}

func asciiSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func negativeContext(before, after, value, kind string) string {
	if kind == "email" {
		return ""
	}
	if containsWord(before, negativeWords) {
		return "word"
	}
	near := before[max(0, backRunes(before, len(before), 3)):] + " " + after[:forwardRunes(after, 0, 3)]
	if currencyRe.MatchString(near) {
		return "currency"
	}
	d := onlyDigits(value)
	if isbn(d) {
		return "isbn"
	}
	if timestamp(d) && !strings.ContainsAny(value, " -.") {
		return "timestamp"
	}
	return ""
}

// resolve keeps, of overlapping candidates, the one with the highest
// score, words for its kind counted (the longer one on a tie), and numbers
// the survivors in text order.
func resolve(c []Entity) []Entity {
	eff := func(e Entity) float64 {
		if e.Positive {
			return e.Score + 0.35
		}
		return e.Score
	}
	sort.SliceStable(c, func(i, j int) bool {
		if eff(c[i]) != eff(c[j]) {
			return eff(c[i]) > eff(c[j])
		}
		return c[i].End-c[i].Start > c[j].End-c[j].Start
	})
	var out []Entity
next:
	for _, e := range c {
		for _, o := range out {
			if e.Start < o.End && o.Start < e.End {
				continue next
			}
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	for i := range out {
		out[i].ID = i
	}
	return out
}

// phoneScore parses a candidate with libphonenumber's metadata: a valid
// number scores high, a merely possible one low (context decides), a
// typical phone layout adds a little. It returns the end of the part that
// was used.
func phoneScore(s string, start, end int, cjk bool) (float64, int) {
	if start > 0 {
		p := s[start-1]
		if p >= '0' && p <= '9' || p >= 'A' && p <= 'Z' || p >= 'a' && p <= 'z' {
			return 0, 0
		}
	}
	if end < len(s) && s[end] >= '0' && s[end] <= '9' {
		return 0, 0
	}
	cand := strings.TrimRight(s[start:end], " -./(")
	end = start + len(cand)
	if dateShape.MatchString(cand) || ipv4Re.MatchString(cand) && strings.Count(cand, ".") == 3 {
		return 0, 0
	}
	n := countDigits(cand)
	if n < 7 || n > 15 {
		return 0, 0
	}
	// National numbers are read in a few regions only: the more regions,
	// the more digit runs are "valid" somewhere.
	regions := []string{"US", "GB", "CN"}
	if cjk {
		// In Chinese text a bare number is read as a Chinese one only:
		// "12812345678" is a valid US number but no Chinese one.
		regions = []string{"CN", "HK", "TW"}
	}
	intl := strings.HasPrefix(cand, "+") || strings.HasPrefix(cand, "00")
	best := 0.0
	try := func(region string) {
		num, err := phonenumbers.Parse(cand, region)
		if err != nil {
			return
		}
		switch {
		case phonenumbers.IsValidNumber(num):
			best = max(best, 0.75)
			if intl {
				best = 0.85
			}
		case phonenumbers.IsPossibleNumber(num):
			best = max(best, 0.35)
		}
	}
	if intl {
		try("ZZ")
	} else {
		for _, r := range regions {
			if try(r); best >= 0.75 {
				break
			}
		}
	}
	if best > 0 && phoneShape.MatchString(cand) {
		best += 0.2
	}
	return best, end
}

var dateShape = regexp.MustCompile(`^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4})$`)

// digitNeighbour says whether a digit touches the span: a longer number
// (a letter may touch it: "Visa4012…" is still a card).
func digitNeighbour(s string, start, end int) bool {
	return (start > 0 && s[start-1] >= '0' && s[start-1] <= '9') || (end < len(s) && s[end] >= '0' && s[end] <= '9')
}

var phoneShape = regexp.MustCompile(`^(?:\+\d{1,3}[ \-.]?)?(?:\(\d{2,4}\)[ \-.]?\d{3,4}[ \-.]\d{4}|\d{3}[ \-.]\d{3,4}[ \-.]\d{4}|1[3-9]\d[ \-.]\d{4}[ \-.]\d{4})$`)

func ipScore(ip net.IP) float64 {
	if ip.IsPrivate() || ip.IsLoopback() || ip.IsUnspecified() || ip.IsLinkLocalUnicast() || ip.IsMulticast() {
		return 0.4
	}
	return 0.7
}

// adjacentDot rejects "1.2.3.4.5" (a version), which \b alone lets through.
func adjacentDot(s string, start, end int) bool {
	return (start > 0 && s[start-1] == '.') || (end < len(s) && s[end] == '.' && end+1 < len(s) && s[end+1] >= '0' && s[end+1] <= '9')
}

func onlyDigits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

func onlyDigitsX(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r == 'X' || r == 'x' {
			return unicode.ToUpper(r)
		}
		return -1
	}, s)
}

// idChecksum checks a GB 11643 resident identity number: ISO 7064 MOD 11-2.
func idChecksum(s string) bool {
	if len(s) != 18 {
		return false
	}
	weights := [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	total := 0
	for i, w := range weights {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		total += int(s[i]-'0') * w
	}
	return s[17] == "10X98765432"[total%11]
}

// luhn checks ISO/IEC 7812 over 13–19 digits.
func luhn(d string) bool {
	if len(d) < 13 || len(d) > 19 {
		return false
	}
	sum := 0
	for i := range len(d) {
		x := int(d[len(d)-1-i] - '0')
		if i%2 == 1 {
			if x *= 2; x > 9 {
				x -= 9
			}
		}
		sum += x
	}
	return sum%10 == 0
}

// ibanLengths are the IBAN lengths of common countries; others accept
// 15–34 characters.
var ibanLengths = map[string]int{"DE": 22, "GB": 22, "FR": 27, "ES": 24, "IT": 27, "NL": 18, "BE": 16, "CH": 21, "AT": 20, "PL": 28, "SE": 24, "IE": 22, "PT": 25, "DK": 18, "NO": 15, "FI": 18, "LU": 20, "SA": 24, "AE": 23, "TR": 26}

// ibanValid checks the ISO 13616 mod-97 check digits.
func ibanValid(s string) bool {
	s = strings.ToUpper(strings.ReplaceAll(s, " ", ""))
	if n, ok := ibanLengths[s[:2]]; (ok && len(s) != n) || len(s) < 15 || len(s) > 34 {
		return false
	}
	var b strings.Builder
	for _, r := range s[4:] + s[:4] {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteString(big.NewInt(int64(r - 'A' + 10)).String())
		default:
			return false
		}
	}
	n, ok := new(big.Int).SetString(b.String(), 10)
	return ok && new(big.Int).Mod(n, big.NewInt(97)).Int64() == 1
}

// ssnValid rejects numbers the SSA never issues: area 000, 666, 900–999;
// group 00; serial 0000.
func ssnValid(d string) bool {
	if len(d) != 9 {
		return false
	}
	area, group, serial := d[:3], d[3:5], d[5:]
	return area != "000" && area != "666" && area[0] != '9' && group != "00" && serial != "0000"
}

// isbn says whether d is an ISBN-13 (978/979 and its check digit); an
// ISBN-10 is known by the word "ISBN" only, since one in eleven 10-digit
// phone numbers would pass its check.
func isbn(d string) bool {
	switch len(d) {
	case 13:
		if !strings.HasPrefix(d, "978") && !strings.HasPrefix(d, "979") {
			return false
		}
		sum := 0
		for i := range 13 {
			w := 1
			if i%2 == 1 {
				w = 3
			}
			sum += int(d[i]-'0') * w
		}
		return sum%10 == 0
	}
	return false
}

// timestamp says whether d reads as yyyyMMddHHmm[ss].
func timestamp(d string) bool {
	if len(d) != 12 && len(d) != 14 {
		return false
	}
	if !strings.HasPrefix(d, "19") && !strings.HasPrefix(d, "20") {
		return false
	}
	mo, day, hh, mm := d[4:6], d[6:8], d[8:10], d[10:12]
	return mo >= "01" && mo <= "12" && day >= "01" && day <= "31" && hh <= "23" && mm <= "59"
}

// backRunes returns the byte offset n runes before i in s.
func backRunes(s string, i, n int) int {
	for ; n > 0 && i > 0; n-- {
		_, size := utf8.DecodeLastRuneInString(s[:i])
		i -= size
	}
	return i
}

// forwardRunes returns the byte offset n runes after i in s.
func forwardRunes(s string, i, n int) int {
	for ; n > 0 && i < len(s); n-- {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return i
}
