// Interface text in English and Chinese, picked from the browser's
// languages (the first of navigator.languages that we have).

const text = {
  en: {
    title: "Tributary",
    keyLabel: "API key", keyUse: "Use key", keyForget: "Forget",
    keyNeeded: "Enter an API key to start.",
    keyChecking: "Checking the key…",
    keyOK: "Key accepted.",
    keyWrong: "This API key was refused. Check it and try again.",
    keyForgotten: "The key was removed from this tab.",
    unreachable: "The server could not be reached.",
    chatHeading: "Ask", questionLabel: "Question", questionPlaceholder: "Ask a question (Enter sends, Shift+Enter for a new line)",
    send: "Send", stop: "Stop",
    you: "You", assistant: "Answer",
    waiting: "Waiting for the answer…",
    stopped: "Stopped.",
    truncated: "The answer was cut off at its length limit.",
    refused: "Refused",
    moderated: "The answer was withheld by moderation.",
    failed: "Error",
    rateLimited: (s) => `Too many questions for this key; try again in ${s} s.`,
    disconnected: "The connection closed.",
    connectFailed: "Could not connect to the chat: the API key was refused or the server is unreachable.",
    requestId: "request",
    sourcesHeading: "Sources", sourcesEmpty: "The sources of an answer appear here.",
    noSources: "This answer cites no sources.",
    page: (p) => `page ${p}`, score: (s) => `score ${s}`,
    docsHeading: "Documents", dropHint: "Drop files here, or", chooseFiles: "Choose files",
    docsList: "Your documents", refresh: "Refresh", more: "More",
    colTitle: "Title", colId: "Id", colVersion: "Version", colActions: "Actions",
    del: "Delete", confirmDelete: (t) => `Delete “${t}”?`, deleted: (t) => `Deleted “${t}”.`,
    noDocs: "No documents yet.",
    uploading: (p) => `uploading ${p}%`, accepted: "accepted, indexing…", unchanged: "unchanged",
    indexed: "indexed", active: "indexing…", uploadFailed: "failed",
    auditHeading: "Audit export", auditHint: "For keys in the compliance group.",
    since: "Since", until: "Until", type: "Event type", download: "Download",
    auditRunning: "Exporting…",
    auditDone: (n) => `Downloaded ${n} records.`,
    auditForbidden: "This key is not in the compliance group.",
    auditVerify: (s) => `Verification: ${s}`,
    auditShredded: (n) => `(${n} records crypto-shredded)`,
    auditNoSummary: "Verification status missing: the export ended early; check it with `tributary audit export`.",
  },
  zh: {
    title: "Tributary",
    keyLabel: "API 密钥", keyUse: "使用密钥", keyForget: "清除",
    keyNeeded: "请输入 API 密钥。",
    keyChecking: "正在验证密钥…",
    keyOK: "密钥有效。",
    keyWrong: "API 密钥被拒绝，请检查后重试。",
    keyForgotten: "已从此标签页清除密钥。",
    unreachable: "无法连接服务器。",
    chatHeading: "提问", questionLabel: "问题", questionPlaceholder: "输入问题（回车发送，Shift+回车换行）",
    send: "发送", stop: "停止",
    you: "你", assistant: "回答",
    waiting: "正在等待回答…",
    stopped: "已停止。",
    truncated: "回答已达长度上限而被截断。",
    refused: "已拒绝",
    moderated: "回答被内容审核拦截。",
    failed: "错误",
    rateLimited: (s) => `此密钥提问过于频繁，请在 ${s} 秒后重试。`,
    disconnected: "连接已关闭。",
    connectFailed: "无法连接聊天服务：API 密钥被拒绝或服务器不可达。",
    requestId: "请求",
    sourcesHeading: "来源", sourcesEmpty: "回答的来源将显示在这里。",
    noSources: "此回答未引用来源。",
    page: (p) => `第 ${p} 页`, score: (s) => `相关度 ${s}`,
    docsHeading: "文档", dropHint: "将文件拖放到此处，或", chooseFiles: "选择文件",
    docsList: "你的文档", refresh: "刷新", more: "更多",
    colTitle: "标题", colId: "ID", colVersion: "版本", colActions: "操作",
    del: "删除", confirmDelete: (t) => `删除“${t}”？`, deleted: (t) => `已删除“${t}”。`,
    noDocs: "还没有文档。",
    uploading: (p) => `上传中 ${p}%`, accepted: "已接收，正在索引…", unchanged: "未变化",
    indexed: "已索引", active: "正在索引…", uploadFailed: "失败",
    auditHeading: "审计导出", auditHint: "仅限 compliance 组的密钥。",
    since: "起始", until: "截止", type: "事件类型", download: "下载",
    auditRunning: "正在导出…",
    auditDone: (n) => `已下载 ${n} 条记录。`,
    auditForbidden: "此密钥不在 compliance 组中。",
    auditVerify: (s) => `校验结果：${s}`,
    auditShredded: (n) => `（${n} 条记录已加密销毁）`,
    auditNoSummary: "缺少校验结果：导出提前结束；请用 `tributary audit export` 校验。",
  },
};

export function pickLanguage(langs = navigator.languages || [navigator.language || "en"]) {
  for (const l of langs) {
    const base = String(l).toLowerCase().split("-")[0];
    if (base in text) return base;
  }
  return "en";
}

export const lang = pickLanguage();

// t returns the text for key, calling it with args when it is a function.
export function t(key, ...args) {
  const v = text[lang][key] ?? text.en[key] ?? key;
  return typeof v === "function" ? v(...args) : v;
}

// translate fills elements marked data-i18n and data-i18n-placeholder.
export function translate(root = document) {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
}
