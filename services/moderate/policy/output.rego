# Output policy: moderates one unit of text a client will see — a sentence
# of a streamed answer, a citation title or snippet, a search result's
# title, heading or text.
#
# Input (built by the moderate service):
#   text        the unit (a sentence, or a forced cut of a long run)
#   channel     "answer", "citation_title", "citation_snippet",
#               "search_title" (titles and headings) or "search_snippet"
#   entities    personal data the recognizers found: [{"id", "kind",
#               "score", "positive", "negative", "negative_by"}]; kinds:
#               email, phone, id_card, card, iban, ssn, ip, passport
#   views       folded views of text (see injection.rego)
#   redactions_before  redactions already made earlier in the same answer
#   source_flagged  (citations, search results) the chunk was flagged when the
#               retrieved context was screened
#   context     (when known) {"chunks", "flagged", "max_score"} of the
#               answer's retrieved chunks; the default policy does not use
#               it for answer sentences, whose moderation must stay a
#               function of the answer text (see docs/moderate.md)
#   limits.max_redactions  configured limit (0: the default below)
#
# Result: data.tributary.output.decision
#   {"redact": [entity ids], "matches": {kind: [literal strings]},
#    "drop": bool, "block": bool, "rules": [rule ids], "counts": {rule: n}}
# The service replaces each redacted entity and each literal match by
# "[REDACTED:<kind>]", and a dropped unit by "[REMOVED:instructions]".
package tributary.output

import data.tributary.injection

default_max_redactions := 20

max_redactions := input.limits.max_redactions if {
	input.limits.max_redactions > 0
} else := default_max_redactions

redactions_before := object.get(input, "redactions_before", 0)

# A recognizer's base score, moved by the words around it: words for the
# kind ("phone", 身份证) add, words against it ("order", "ISBN", a currency)
# subtract unless words for it are there too.
positive_weight := 0.35

negative_weight := 0.5

thresholds := {"email": 0.5, "phone": 0.5, "id_card": 0.5, "bank_card": 0.5, "iban": 0.5, "ssn": 0.5, "ip": 0.5, "passport": 0.5}

score(e) := e.score + positive_weight if e.positive

score(e) := e.score - negative_weight if {
	not e.positive
	e.negative
}

score(e) := e.score if {
	not e.positive
	not e.negative
}

redact contains e.id if {
	some e in input.entities
	score(e) >= object.get(thresholds, e.kind, 0.5)
}

# Operators add literal redactions here: kind → regular expression.
custom_patterns := {}

matches := {kind: ms |
	some kind, re in custom_patterns
	ms := regex.find_n(re, input.text, -1)
	count(ms) > 0
}

# Source text that carries injected instructions (an extractive answer
# quotes it; a model may have followed it) is removed, not quoted.
assessment := injection.assess(input.views)

default drop := false

drop if assessment.flagged

# A citation of a chunk that screening flagged shows no text of it.
drop if {
	input.channel != "answer"
	object.get(input, "source_flagged", false)
}

pii_counts := {concat("", ["pii.", kind]): n |
	some kind in {e.kind | some e in input.entities; e.id in redact}
	n := count({e.id | some e in input.entities; e.kind == kind; e.id in redact})
}

custom_counts := {concat("", ["pii.", kind]): count(ms) | some kind, ms in matches}

injection_counts := {"injection.indirect": 1} if drop else := {}

# context_decision screens one retrieved chunk (input: {"text", "views"}):
# flagged chunks are reported at answer time and never quoted in citations.
context_decision := {"flagged": a.flagged, "score": a.score, "signals": a.signals} if {
	a := injection.assess(input.views)
}

counts := object.union(object.union(pii_counts, custom_counts), injection_counts)

total_redactions := sum([n | some r, n in counts; startswith(r, "pii.")])

# The answer repeats the assistant's own instructions: the model was talked
# into leaking its prompt, so the rest of the answer is withheld.
system_prompt_markers := [
	`you are tributary, an enterprise knowledge assistant`,
	`你是 ?tributary ?企业知识库助手`,
]

block_rules contains "leak.system_prompt" if {
	input.channel == "answer"
	contains(input.views.text, "tributary")
	some marker in system_prompt_markers
	regex.match(marker, input.views.text)
}

# An answer that would need more redactions than the limit is a bulk
# personal-data dump, not an answer: it is withheld.
block_rules contains "pii.bulk" if {
	input.channel == "answer"
	redactions_before + total_redactions > max_redactions
}

rules := sort(array.concat([r | some r, _ in counts], [r | some r in block_rules]))

decision := {
	"redact": sort([id | some id in redact]),
	"matches": matches,
	"drop": drop,
	"block": count(block_rules) > 0,
	"rules": rules,
	"counts": counts,
}
