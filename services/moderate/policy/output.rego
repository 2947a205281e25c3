# Output policy: moderates one sentence of a streamed answer.
#
# Input (built by the moderate service):
#   text        the sentence (or a forced cut of a long run without one)
#   redactions_before  redactions already made earlier in the same answer
#   limits.max_redactions  configured limit (0: the default below)
#
# Result: data.tributary.output.decision
#   {"text": redacted sentence ("" when blocked), "block": bool,
#    "rules": [rule ids that fired], "counts": {rule id: matches}}
#
# Redaction runs in stages, each on the previous stage's output, so a
# digit run is claimed by the first kind that validates it: e-mail, then
# resident ID (checksum), bank card (Luhn), Chinese mobile, international
# phone. Matches are replaced by "[REDACTED:<kind>]".
package tributary.output

default_max_redactions := 20

max_redactions := input.limits.max_redactions if {
	input.limits.max_redactions > 0
} else := default_max_redactions

redactions_before := object.get(input, "redactions_before", 0)

placeholder(kind) := sprintf("[REDACTED:%s]", [kind])

redact(text, matches, kind) := strings.replace_n({m: placeholder(kind) | some m in matches}, text)

# \b is an ASCII word boundary: it holds between a digit and a CJK
# character or punctuation, but not inside a longer run of digits or
# letters, so "电话13812345678。" matches and a 25-digit number does not.
email_re := `[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`

id_re := `\b[1-9][0-9]{16}[0-9Xx]\b`

card_re := `\b[0-9](?:[ -]?[0-9]){12,18}\b`

cn_mobile_re := `(?:(?:\+|\b00)86[ -]?|\b)1[3-9][0-9](?:[ -]?[0-9]{4}){2}\b`

intl_phone_re := `\+[1-9][0-9]{0,2}(?:[ .-]?[0-9]){6,13}\b`

emails := {m | some m in regex.find_n(email_re, input.text, -1)}

text_email := redact(input.text, emails, "email")

ids := {m |
	some m in regex.find_n(id_re, text_email, -1)
	id_checksum_valid(m)
}

text_id := redact(text_email, ids, "id_card")

# A "+" or "00" before the digits makes them a phone number in
# international form, whatever Luhn says (+86 138… passes it).
cards := {m |
	some m in regex.find_n(card_re, text_id, -1)
	not contains(text_id, concat("", ["+", m]))
	not startswith(m, "00")
	luhn_valid(regex.replace(m, `[ -]`, ""))
}

text_card := redact(text_id, cards, "bank_card")

cn_mobiles := {m | some m in regex.find_n(cn_mobile_re, text_card, -1)}

text_cn := redact(text_card, cn_mobiles, "phone")

intl_phones := {m | some m in regex.find_n(intl_phone_re, text_cn, -1)}

redacted_text := redact(text_cn, intl_phones, "phone")

# Resident identity number (GB 11643): 17 digits and a check character
# from ISO 7064 MOD 11-2.
id_weights := [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]

id_check_chars := ["1", "0", "X", "9", "8", "7", "6", "5", "4", "3", "2"]

id_checksum_valid(s) if {
	chars := split(upper(s), "")
	count(chars) == 18
	total := sum([x | some i in numbers.range(0, 16); x := to_number(chars[i]) * id_weights[i]])
	chars[17] == id_check_chars[total % 11]
}

# Luhn (ISO/IEC 7812) over a string of 13-19 digits.
luhn_valid(digits) if {
	ds := [to_number(c) | some c in split(digits, "")]
	n := count(ds)
	n >= 13
	n <= 19
	total := sum([x | some i in numbers.range(0, n - 1); x := luhn_term(ds[i], (n - 1) - i)])
	total % 10 == 0
}

luhn_term(d, pos) := d if pos % 2 == 0

luhn_term(d, pos) := d * 2 if {
	pos % 2 == 1
	d * 2 <= 9
}

luhn_term(d, pos) := (d * 2) - 9 if {
	pos % 2 == 1
	d * 2 > 9
}

counts := {rule: n |
	some rule, ms in {
		"pii.email": emails,
		"pii.id_card": ids,
		"pii.bank_card": cards,
		"pii.phone.cn_mobile": cn_mobiles,
		"pii.phone.international": intl_phones,
	}
	n := count(ms)
	n > 0
}

total_redactions := sum([n | some n in counts])

# The answer repeats the assistant's own instructions: the model was talked
# into leaking its prompt, so the rest of the answer is withheld.
system_prompt_markers := [
	`you are tributary, an enterprise knowledge assistant`,
	`你是 ?tributary ?企业知识库助手`,
]

block_rules contains "leak.system_prompt" if {
	some marker in system_prompt_markers
	regex.match(marker, lower(input.text))
}

# An answer that would need more redactions than the limit is a bulk
# personal-data dump, not an answer: it is withheld.
block_rules contains "pii.bulk" if redactions_before + total_redactions > max_redactions

rules := sort(array.concat([r | some r, _ in counts], [r | some r in block_rules]))

decision := {
	"text": "",
	"block": true,
	"rules": rules,
	"counts": counts,
} if {
	count(block_rules) > 0
} else := {
	"text": redacted_text,
	"block": false,
	"rules": rules,
	"counts": counts,
}
