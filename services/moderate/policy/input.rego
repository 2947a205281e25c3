# Input policy: decides whether a question may enter the pipeline.
#
# Input (built by the moderate service):
#   question    the question as asked
#   views       folded views of the question (see injection.rego)
#   runes       number of characters (Unicode code points) of question
#   limits.max_question_runes  configured limit (0: the default below)
#
# Result: data.tributary.input.decision
#   {"allow": bool, "code": string, "message": string, "rules": [rule ids],
#    "score": number}
package tributary.input

import data.tributary.injection

default_max_question_runes := 2000

max_question_runes := input.limits.max_question_runes if {
	input.limits.max_question_runes > 0
} else := default_max_question_runes

assessment := injection.assess(input.views)

too_long if input.runes > max_question_runes

empty if count(trim_space(input.question)) == 0

rules contains concat("", ["injection.", s]) if {
	assessment.flagged
	some s in assessment.signals
}

rules contains "length.max_question_runes" if too_long

rules contains "length.empty" if empty

default decision := {"allow": true, "code": "", "message": "", "rules": [], "score": 0}

# Prompt injection wins over length: it is the more telling reason.
decision := {
	"allow": false,
	"code": "prompt_injection",
	"message": "the question looks like an attempt to override the assistant's instructions",
	"rules": sort([id | some id in rules]),
	"score": assessment.score,
} if {
	assessment.flagged
} else := {
	"allow": false,
	"code": "too_long",
	"message": sprintf("the question has %d characters; at most %d are allowed", [input.runes, max_question_runes]),
	"rules": sort([id | some id in rules]),
	"score": assessment.score,
} if {
	too_long
} else := {
	"allow": false,
	"code": "empty",
	"message": "the question is empty",
	"rules": sort([id | some id in rules]),
	"score": assessment.score,
} if {
	empty
} else := {"allow": true, "code": "", "message": "", "rules": [], "score": assessment.score}
