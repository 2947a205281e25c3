# Injection evidence: weak signals that add up to a score. Both the input
# policy (questions) and the output policy (answer sentences and citation
# snippets, i.e. retrieved source text) call assess.
#
# A view set v is built by the moderate service (see docs/moderate.md):
#   v.text     folded text (NFKC, lower case, homoglyph skeleton, marks
#              dropped, zero-width → space, spaced letters joined, leet
#              folded, traditional → simplified), single spaces
#   v.joined   the same with zero-width characters removed instead
#   v.compact  only letters and digits (for Chinese)
#   v.decoded  folded texts of base64/hex runs that decoded to text
#   v.evasion  obfuscations seen ("zero_width", "homoglyph", "leet", …)
#   v.matches  (optional) per view pair, {"hits", "benign"} as computed in
#              Go from the patterns below; see matches(v)
#
# Operators tune weights and threshold here, or add a signal by adding an
# entry with the same id to en_weights and en_patterns (English, matched on
# v.text and v.joined) or zh_weights and zh_patterns (matched on v.compact).
package tributary.injection

threshold := 1.0

# Added once when the text is already suspicious and was obfuscated.
evasion_weight := 0.3

# Subtracted once when the text is about an ordinary technical object
# (firewall rules, a linter's warnings), which keeps "override the default
# firewall rules" answerable. Strong evidence still adds up past it.
benign_weight := 0.5

verbs := `(?:ignore|disregard|forget|bypass|override|overrule|skip|abandon|discard|throw away|set aside|stop following|do not follow|don'?t follow|never ?mind)`

objects := `(?:instructions?|prompts?|rules|guidelines|directives?|guardrails|restrictions|programming|constraints|polic(?:y|ies)|system messages?)`

en_weights := {
	"override_instructions": 0.6,
	"prior_reference": 0.5,
	"role_change": 0.6,
	"no_limits": 0.5,
	"jailbreak_terms": 0.5,
	"secret_request": 0.6,
	"secret_object": 0.5,
	"template_tokens": 0.8,
	"fake_role_line": 0.5,
	"new_instructions": 0.4,
	"data_exfiltration": 0.4,
	"must_obey": 0.3,
}

en_patterns := {
	"override_instructions": concat("", [verbs, `[^.!?]*?`, objects]),
	"prior_reference": concat("", [`(?:previous|prior|above|earlier|preceding|original|initial|system|your|all(?: of)?(?: the| your)?|any|every|existing)\s?`, objects]),
	"role_change": `you are now|you're now|from now on,? (?:you|act|respond|answer)|pretend (?:to be|you are|you're|that you)|act as (?:an? )?(?:unrestricted|unfiltered|uncensored|jailbroken|evil|rogue|different)|role-?play as|you will now (?:act|be|respond)|simulate (?:an? )?(?:unrestricted|unfiltered)|you are no longer`,
	"no_limits": `no (?:restrictions|limits|rules|filters|guidelines|boundaries|censorship)|without (?:any )?(?:restrictions|limits|rules|filters|censorship|guidelines)|unrestricted|uncensored|unfiltered|no longer bound|not bound by|free from (?:all|any) (?:rules|restrictions)`,
	"jailbreak_terms": `\bdan\b|do anything now|jailbr(?:eak|oken)|developer mode|dev mode|god mode|evil mode|stan mode`,
	"secret_request": `(?:reveal|show|print|output|repeat|display|leak|dump|expose|tell me|give me|what (?:is|are|were)|what's|list|recite|spell out|translate|summari[sz]e|write out|copy|paste)[^.!?]*?(?:(?:your|the|its|this assistant'?s|the assistant'?s)\s?(?:system ?prompt|system ?message|hidden (?:instructions?|prompt|rules|configuration|config)|initial (?:instructions?|prompt)|original (?:instructions?|prompt)|secret (?:instructions?|prompt)|instructions|prompt|configuration|developer message)|(?:the )?(?:text|words|everything|all) (?:above|before))`,
	"secret_object": `(?:your|the) ?(?:system ?prompt|hidden instructions|initial instructions|original instructions|secret instructions|developer message|confidential instructions)|(?:text|words|everything) (?:above|before) (?:this|the first)`,
	"template_tokens": `<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id)\|>|\[/?inst\]|<</?sys>>|### ?(?:system|instruction)|begin ?system ?prompt`,
	"fake_role_line": `(?:^|[\s\]>])(?:system|assistant|developer|admin|administrator)\s?(?::|\]|>)\s?(?:you|ignore|new|from|the user|override|do|reveal|disregard|forget)|\[(?:system|admin|developer)(?: message| note)?\]`,
	"new_instructions": `new (?:instructions|rules|task|directive|orders)|updated instructions|instead,? (?:you will|you must|do|say|respond)|your (?:new|real|true) (?:task|purpose|goal|instructions)|(?:important|attention|note to (?:the )?(?:ai|assistant|model))\W{0,3}(?:ignore|new|you must)`,
	"data_exfiltration": `(?:reveal|list|dump|export|print|show|send)(?: me)? (?:all|every|the) (?:confidential|secret|internal|private|hidden|restricted) (?:data|documents|files|information|records)|(?:list|dump|export) (?:all|every) (?:documents?|files|records|employees?|salaries|passwords)`,
	"must_obey": `you (?:must|will|shall) (?:now )?(?:obey|comply|answer (?:everything|anything|all))|answer without (?:any )?(?:restrictions|filters|refusing)|never refuse|do not refuse|don't refuse`,
}

# Chinese signals need Chinese on at least one side, so that English text
# (whose compact view they also see) is not counted twice; mixed text
# ("忽略 all previous instructions") still is.
zh_verbs := `(?:忽略|无视|忽视|忘记|忘掉|跳过|不要理会|别理会|不要遵守|不用遵守|不必遵守|抛弃|放弃|绕过|违反|推翻)`

zh_objects := `(?:指令|指示|提示词|提示语|规则|要求|命令|设定|约束|限制|规定|准则|安全策略)`

mixed_verbs := `(?:ignore|disregard|forget|bypass)`

mixed_objects := `(?:instructions?|prompts?|rules)`

zh_prior := `(?:之前|以上|上面|前面|先前|此前|上述|所有|全部|一切|你的|原来|原有|原始|初始)的?(?:所有|全部|一切)?的?`

zh_weights := {
	"zh.override_instructions": 0.6,
	"zh.prior_reference": 0.5,
	"zh.role_change": 0.6,
	"zh.no_limits": 0.5,
	"zh.jailbreak_terms": 0.5,
	"zh.secret_request": 0.6,
	"zh.secret_request_ba": 0.6,
	"zh.secret_object": 0.5,
	"zh.new_instructions": 0.4,
}

zh_patterns := {
	"zh.override_instructions": concat("", [zh_verbs, `.{0,12}?(?:`, zh_objects, "|", mixed_objects, ")|", mixed_verbs, `.{0,24}?`, zh_objects]),
	"zh.prior_reference": concat("", [zh_prior, `(?:`, zh_objects, "|", mixed_objects, `)|(?:previous|above|all|your)`, zh_objects]),
	"zh.role_change": `你现在是(?:一个|个)?(?:没有|不受|无)|你现在(?:扮演|要扮演|开始扮演)|从现在(?:开始|起)你(?:是|就是|将是|扮演|要|必须)|假装(?:你|自己)是|扮演(?:一个)?(?:没有|不受|无)|你不再是|进入.{0,6}模式`,
	"zh.no_limits": `没有(?:任何)?(?:限制|约束|规则|过滤|审查)|不受(?:任何)?(?:限制|约束|规则)|无限制|无任何限制|不受约束`,
	"zh.jailbreak_terms": `越狱|开发者模式|dan模式|上帝模式`,
	"zh.secret_request": `(?:输出|显示|告诉我|泄露|打印|重复|给出|透露|展示|说出|复述|翻译|列出|发给我|写出)(?:一下)?(?:你的|你|系统的|你收到的)?(?:系统提示词|系统提示语|提示词|初始指令|隐藏指令|系统指令|原始指令|系统设定|初始设定|隐藏设定|内部指令|系统消息|开发者消息|所有指令)`,
	"zh.secret_request_ba": `把(?:你|你的|你收到的|系统的)?.{0,6}?(?:系统提示词|提示词|初始指令|隐藏指令|系统指令|原始指令|系统设定|初始设定|隐藏设定)(?:原样|完整|全部|一字不差)?地?(?:输出|复述|重复|打印|告诉我|发给我|写出|翻译|展示)`,
	"zh.secret_object": `(?:你的|系统)(?:提示词|提示语|初始指令|隐藏指令|系统指令|内部指令)`,
	"zh.new_instructions": `新的?指令|新任务|真正的任务|重要提示忽略|你必须服从|必须无条件`,
}

benign_en := `firewall|iptables|nginx|config|configuration|css|eslint|lint|linter|spam|mail filter|routing|git|policy file|yaml|settings|default|warning|certificate|cache|proxy|dns|compiler|formatting|browser|android|iphone|device|windows|bios|router|excel|printer|group policy|style ?sheet|cookie|the test`

benign_zh := `防火墙|配置|证书|警告|路由|浏览器|手机|设置|默认|编译器|缓存|代理|组策略|系统提示音|打印机`

en_hits(text) := {id |
	regex.match(`[a-z]`, text)
	some id, re in en_patterns
	regex.match(re, text)
}

zh_hits(compact) := {id |
	regex.match(`\p{Han}`, compact)
	some id, re in zh_patterns
	regex.match(re, compact)
}

# The weights are literal objects, kept apart from the patterns (some of
# which are built with concat): a ground object costs nothing per decision.
# hit_weights(m) lists the weight of each signal of a view pair: a lookup in
# both tables (ids do not overlap), cheaper than a function with a body per
# table or a merged table built per decision.
hit_weights(m) := [w | some id in m.hits; some table in [en_weights, zh_weights]; w := table[id]]

# Signals that speak of the assistant itself: no technical context excuses
# them.
strong := {"prior_reference", "secret_request", "role_change", "template_tokens", "zh.prior_reference", "zh.secret_request", "zh.secret_request_ba", "zh.role_change"}

benign(text, compact) if regex.match(benign_en, text)

benign(text, compact) if regex.match(benign_zh, compact)

# pairs lists the distinct [text, compact] views of v.
pairs(v) := array.concat(
	array.concat([[v.text, v.compact]], [[v.joined, v.compact] | object.get(v, "joined", v.text) != v.text]),
	[[d, regex.replace(d, `[^\p{L}\p{N}]+`, "")] | some d in object.get(v, "decoded", [])],
)

# matches lists, per view pair, the signals found and whether the text is
# about a technical object. The service computes them in Go from the
# patterns above (compiled once, with a literal prefilter) and passes them
# as v.matches; without them (opa test, hand-made input) they are computed
# here. TestMatcherAgreesWithRego checks both ways agree.
matches(v) := v.matches if {
	v.matches
} else := [{"hits": [id | some id in union({en_hits(p[0]), zh_hits(p[1])})], "benign": benign_pair(p)} | some p in pairs(v)]

benign_pair(p) if benign(p[0], p[1])

default benign_pair(_) := false

# view_score(m) adds up the weights of the signals of one view pair, less
# benign_weight for a technical context.
view_score(m) := s - benign_weight if {
	m.benign
	s := sum(hit_weights(m))
	s > 0
	count({id | some id in m.hits} & strong) == 0
} else := sum(hit_weights(m))

# assess returns {"score", "signals", "flagged"} for a view set: the best
# view's score, plus evasion_weight when that view already carries evidence
# and the text was obfuscated.
assess(v) := {"score": 0, "signals": [], "flagged": false} if {
	# Most text carries no signal at all: nothing to add up (the rule below
	# would give the same).
	every m in matches(v) {
		m.hits == []
	}
} else := {"score": score, "signals": signals, "flagged": score >= threshold} if {
	ms := matches(v)
	base := max([view_score(m) | some m in ms])
	evasion := object.get(v, "evasion", [])
	bonus := evasion_bonus(base, evasion)
	score := base + bonus
	signals := sort(array.concat(
		[id | some id in {id | some m in ms; some id in m.hits}],
		[concat("", ["evasion.", e]) | some e in evasion; bonus > 0],
	))
}

evasion_bonus(base, evasion) := evasion_weight if {
	base >= 0.4
	count(evasion) > 0
} else := 0
