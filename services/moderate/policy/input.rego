# Input policy: decides whether a question may enter the pipeline.
#
# Input (built by the moderate service):
#   question    the question as asked
#   normalized  lower case, full-width folded to half-width, zero-width
#               characters removed, whitespace runs collapsed to one space
#   compact     normalized without any whitespace (catches "忽 略 指 令")
#   runes       number of characters (Unicode code points) of question
#   limits.max_question_runes  configured limit (0: the default below)
#
# Result: data.tributary.input.decision
#   {"allow": bool, "code": string, "message": string, "rules": [rule ids]}
package tributary.input

default_max_question_runes := 2000

max_question_runes := input.limits.max_question_runes if {
	input.limits.max_question_runes > 0
} else := default_max_question_runes

# English patterns run on the normalized text (single spaces, lower case).
english_injection := {
	"injection.ignore_instructions": `\b(ignore|disregard|forget|skip|override|bypass)\b[^.!?]{0,40}\b(previous|prior|above|earlier|preceding|all|any|your|the|these|those)\b[^.!?]{0,30}\b(instructions?|prompts?|rules|directions|guidelines|directives|commands)\b`,
	"injection.system_prompt_override": `\b(ignore|disregard|forget|bypass|override)\b[^.!?]{0,30}\bsystem (prompt|message|instructions?)`,
	"injection.system_prompt_leak": `\b(reveal|show|print|output|repeat|display|leak|dump|expose|tell me|give me|what is|what are|what's)\b[^.!?]{0,30}\b(system|initial|hidden|original|secret) (prompt|instructions?|message)s?\b`,
	"injection.role_override": `\byou are now\b|\bfrom now on,? you are\b|\bpretend (that )?you are\b|\bact as (an? )?(unrestricted|unfiltered|uncensored|jailbroken)\b|\bdo anything now\b|\bdan mode\b|\bdeveloper mode\b|\bjailbreak\b`,
}

# Chinese patterns run on the compact text (no whitespace at all).
chinese_injection := {
	"injection.zh.ignore_instructions": `(忽略|无视|忽视|忘记|忘掉|跳过|不要理会|不要遵守|不用遵守|抛弃)(你)?(之前|以上|上面|前面|先前|此前|上述|所有|全部|一切|系统|原来|原有)(的)?(所有|全部|一切)?(的)?(指令|指示|提示词|提示|规则|要求|命令|设定|约束)`,
	"injection.zh.role_override": `你现在是[^否不]|从现在(开始|起)你(是|就是|将是|扮演)|假装你是|扮演一个(没有|不受)(任何)?(限制|约束)`,
	"injection.zh.system_prompt_leak": `(输出|显示|告诉我|泄露|打印|重复|给出|透露|展示|说出)(一下)?(你的)?(系统|初始|隐藏|原始)(提示词|提示|指令|设定|消息)`,
}

injection_rules contains id if {
	some id, pattern in english_injection
	regex.match(pattern, input.normalized)
}

injection_rules contains id if {
	some id, pattern in chinese_injection
	regex.match(pattern, input.compact)
}

too_long if input.runes > max_question_runes

empty if count(trim_space(input.question)) == 0

rules contains id if some id in injection_rules

rules contains "length.max_question_runes" if too_long

rules contains "length.empty" if empty

default decision := {"allow": true, "code": "", "message": "", "rules": []}

# Prompt injection wins over length: it is the more telling reason.
decision := {
	"allow": false,
	"code": "prompt_injection",
	"message": "the question looks like an attempt to override the assistant's instructions",
	"rules": sort([id | some id in rules]),
} if {
	count(injection_rules) > 0
} else := {
	"allow": false,
	"code": "too_long",
	"message": sprintf("the question has %d characters; at most %d are allowed", [input.runes, max_question_runes]),
	"rules": sort([id | some id in rules]),
} if {
	too_long
} else := {
	"allow": false,
	"code": "empty",
	"message": "the question is empty",
	"rules": sort([id | some id in rules]),
} if {
	empty
}
