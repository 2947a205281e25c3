// Package chunking benchmarks Tributary's chunk splitter against
// langchaingo's recursive character splitter on generated English and
// Chinese corpora.
package chunking

import (
	"math/rand/v2"
	"strings"
)

// englishSentences read like the enterprise documents Tributary ingests:
// policies, runbooks and product notes.
var englishSentences = []string{
	"All employees must complete the annual security awareness training before the end of the first quarter.",
	"The training covers phishing, password hygiene, handling of customer data and the reporting of incidents.",
	"Managers receive a weekly report that lists the members of their team who have not yet finished the course.",
	"Access to production systems is granted only through the identity provider, and every grant expires after ninety days.",
	"If a laptop is lost or stolen, report it to the service desk within one hour so that the device can be wiped remotely.",
	"Expense claims above 5,000 dollars require the approval of a director and a scanned copy of the original invoice.",
	"Travel must be booked through the corporate portal; bookings made elsewhere are not reimbursed.",
	"The on-call engineer acknowledges a page within five minutes and opens an incident channel for anything that affects customers.",
	"During an incident, one person coordinates, one person communicates with customers, and the rest investigate.",
	"After the incident is resolved, the team writes a blameless review that lists the timeline, the causes and the follow-up actions.",
	"Why does the nightly export sometimes take twice as long as usual?",
	"The answer, in most cases, is that the warehouse is compacting its tables at the same time.",
	"Customer data is encrypted at rest with keys that rotate every thirty days, and in transit with TLS 1.3.",
	"Backups are taken every six hours, copied to a second region, and restored in a drill once a month.",
	"The retention period for audit logs is seven years; for application logs it is ninety days.",
	"New suppliers are assessed for security, privacy and financial stability before a contract is signed.",
	"The assessment questionnaire has forty questions, and a supplier that scores below the threshold is escalated to the risk committee.",
	"Our quarterly revenue grew by 12 percent, driven mainly by the renewal of three large enterprise contracts.",
	"Operating costs rose more slowly than revenue, so the operating margin improved from 18 to 21 percent.",
	"The product team will ship the new reporting dashboard in May, followed by the mobile application in September.",
	"Each release goes through automated tests, a staged rollout to five percent of users, and a review of the error budget.",
	"Feature flags let us turn a change off in seconds without deploying again.",
	"Do not paste customer data into external tools, chat assistants or personal e-mail accounts!",
	"Questions about this policy can be sent to the compliance team, who answer within two working days.",
	"The office in Shanghai is open from 9 a.m. to 6 p.m. on working days, and visitors must register at the front desk.",
	"Parking is limited, so please use public transport or the shuttle bus from the metro station when you can.",
	"Meeting rooms are booked through the calendar; a booking that is not used within fifteen minutes is released.",
	"Remote employees receive a monthly allowance for internet access and a one-time budget for office furniture.",
	"Performance reviews take place twice a year and combine self-assessment, peer feedback and the manager's evaluation.",
	"Promotions are decided by a calibration committee so that the same standards apply across departments.",
	"The search service indexes every document within a minute of its upload and removes deleted documents within five.",
	"Results are filtered by the groups of the person asking, so nobody sees a document they could not open directly.",
	"When the model is unsure, it says so and cites the passages it used, instead of guessing an answer.",
	"Latency is measured at the 50th and 99th percentiles; the target for the 99th percentile is two seconds.",
	"Capacity planning assumes a peak of three times the average load, which we saw during the last product launch.",
	"Each service exposes health, readiness and metrics endpoints, and alerts fire when the error rate exceeds one percent.",
}

// englishHeadings start sections of the English corpus.
var englishHeadings = []string{
	"# Security policy", "## Access control", "## Incident response", "# Finance",
	"## Expenses and travel", "# Operations handbook", "## Backups and retention",
	"# Product roadmap", "## Release process", "# Workplace", "## Reviews and promotions",
	"# Search and answers",
}

// chineseSentences are the Chinese counterparts: company policy, operations
// and product notes, with Chinese punctuation.
var chineseSentences = []string{
	"所有员工必须在第一季度结束前完成年度信息安全意识培训。",
	"培训内容包括钓鱼邮件识别、密码管理、客户数据处理以及安全事件的报告流程。",
	"部门经理每周会收到一份报告，列出团队中尚未完成课程的成员。",
	"生产系统的访问权限只能通过统一身份认证平台申请，每次授权在九十天后自动失效。",
	"如果笔记本电脑丢失或被盗，请在一小时内联系服务台，以便远程清除设备数据。",
	"超过五千元的报销申请需要总监审批，并附上原始发票的扫描件。",
	"差旅必须通过公司差旅平台预订；在其他渠道预订的费用不予报销。",
	"值班工程师应在五分钟内确认告警，并为影响客户的问题建立事件处理群。",
	"事件处理期间，一人负责协调，一人负责与客户沟通，其余人员负责排查原因。",
	"事件解决后，团队需要撰写一份不追责的复盘报告，记录时间线、根本原因和后续改进措施。",
	"为什么夜间导出任务有时会比平时慢一倍？",
	"在大多数情况下，原因是数据仓库在同一时间进行表压缩。",
	"客户数据在存储时使用每三十天轮换一次的密钥加密，在传输时使用TLS 1.3加密。",
	"系统每六小时备份一次，备份会复制到另一个区域，并且每月进行一次恢复演练。",
	"审计日志的保存期限为七年；应用日志的保存期限为九十天。",
	"新供应商在签订合同之前，需要接受安全、隐私和财务稳定性方面的评估。",
	"评估问卷共有四十个问题，得分低于阈值的供应商将提交风险委员会审议。",
	"本季度营业收入增长百分之十二，主要来自三份大型企业合同的续约。",
	"运营成本的增长慢于收入增长，因此营业利润率从百分之十八提高到百分之二十一。",
	"产品团队将在五月发布新的报表看板，九月发布移动应用。",
	"每个版本都要经过自动化测试、面向百分之五用户的灰度发布以及错误预算评审。",
	"功能开关可以让我们在几秒钟内关闭某项改动，而无需重新部署。",
	"请勿将客户数据粘贴到外部工具、聊天助手或个人邮箱中！",
	"关于本制度的问题可以发送给合规团队，他们会在两个工作日内答复。",
	"上海办公室的工作时间为工作日上午九点至下午六点，访客须在前台登记。",
	"停车位有限，请尽量乘坐公共交通或从地铁站出发的班车。",
	"会议室通过日历预订；预订后十五分钟内未使用的会议室将被自动释放。",
	"远程办公的员工每月可获得网络补贴，并可一次性申请办公家具预算。",
	"绩效评估每年进行两次，综合自评、同事反馈和经理评价。",
	"晋升由校准委员会决定，以确保各部门采用相同的标准。",
	"搜索服务会在文档上传后一分钟内完成索引，并在五分钟内移除已删除的文档。",
	"检索结果会按提问者所属的用户组过滤，任何人都看不到自己无权打开的文档。",
	"当模型没有把握时，它会如实说明，并引用所依据的段落，而不是随意猜测答案；",
	"延迟按第五十和第九十九百分位统计，第九十九百分位的目标是两秒。",
	"容量规划假设峰值负载为平均负载的三倍，这与上次产品发布时的情况一致。",
	"每个服务都提供健康检查、就绪检查和指标接口，当错误率超过百分之一时会触发告警。",
}

// chineseHeadings start sections of the Chinese corpus.
var chineseHeadings = []string{
	"# 信息安全制度", "## 访问控制", "## 事件响应", "# 财务", "## 报销与差旅",
	"# 运维手册", "## 备份与保留", "# 产品路线图", "## 发布流程", "# 办公环境",
	"## 绩效与晋升", "# 搜索与问答",
}

// English returns a deterministic English corpus of about n bytes.
func English(n int) string { return generate(n, englishSentences, englishHeadings, " ", 1) }

// Chinese returns a deterministic Chinese corpus of about n bytes.
func Chinese(n int) string { return generate(n, chineseSentences, chineseHeadings, "", 2) }

// generate writes sections of paragraphs (3–12 sentences, some long enough to
// need splitting inside), occasional list items and headings, from a fixed
// seed.
func generate(n int, sentences, headings []string, space string, seed uint64) string {
	rng := rand.New(rand.NewPCG(seed, 42))
	var sb strings.Builder
	sb.Grow(n + 4096)
	for sb.Len() < n {
		if rng.IntN(4) == 0 {
			sb.WriteString(headings[rng.IntN(len(headings))])
			sb.WriteString("\n\n")
		}
		switch rng.IntN(6) {
		case 0: // a list
			items := 2 + rng.IntN(4)
			for i := 0; i < items; i++ {
				sb.WriteString("- ")
				sb.WriteString(sentences[rng.IntN(len(sentences))])
				sb.WriteByte('\n')
			}
		default: // a paragraph
			m := 3 + rng.IntN(10)
			for i := 0; i < m; i++ {
				if i > 0 {
					sb.WriteString(space)
				}
				sb.WriteString(sentences[rng.IntN(len(sentences))])
			}
			sb.WriteByte('\n')
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}
