// The chat page: wires the DOM to the edge's public API. Every text from
// the server goes into the DOM as text (never as HTML).
import { ChatClient, splitMarkers } from "./chat.js";
import { t, translate } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const KEY = "tributary.apiKey";
let key = sessionStorage.getItem(KEY) || "";
let chat = null;
let current = null; // the ask being streamed: {id, el, text, citations}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

function setStatus(id, msg, kind = "") {
  const s = $(id);
  s.textContent = msg;
  s.dataset.kind = kind;
}

function auth() {
  return { Authorization: "Bearer " + key };
}

// apiError reads the API's {"error":{"code","message"}} body.
async function apiError(resp) {
  try {
    const b = await resp.json();
    if (b && b.error) return b.error;
  } catch { /* not JSON */ }
  return { code: String(resp.status), message: resp.statusText };
}

// ---- key ----

async function useKey(k) {
  key = k;
  if (chat) chat.close();
  chat = null;
  if (!key) {
    setStatus("key-status", t("keyNeeded"));
    return;
  }
  setStatus("key-status", t("keyChecking"));
  // An HTTP call tells a wrong key (401) apart from a dead server, which
  // a failed WebSocket upgrade cannot.
  let resp;
  try {
    resp = await fetch("/v1/documents?limit=100", { headers: auth() });
  } catch {
    setStatus("key-status", t("unreachable"), "error");
    return;
  }
  if (resp.status === 401) {
    sessionStorage.removeItem(KEY);
    setStatus("key-status", t("keyWrong"), "error");
    $("key").setAttribute("aria-invalid", "true");
    $("key").focus();
    return;
  }
  $("key").removeAttribute("aria-invalid");
  sessionStorage.setItem(KEY, key);
  setStatus("key-status", t("keyOK"), "ok");
  chat = new ChatClient(key);
  renderDocs(resp, false);
}

// ---- ask ----

function renderAnswer(a) {
  a.body.replaceChildren();
  for (const part of splitMarkers(a.text)) {
    if (typeof part === "string") {
      a.body.append(part);
      continue;
    }
    const sup = el("span", { class: "cite" });
    part.numbers.forEach((n, i) => {
      if (i) sup.append(", ");
      sup.append(el("a", { href: "#src-" + a.id + "-" + n, class: "marker", dataset: { n: String(n) } }, String(n)));
    });
    a.body.append("[", sup, "]");
  }
}

function renderSources(a) {
  const list = $("sources");
  list.replaceChildren();
  $("sources-empty").textContent = a.citations.length ? "" : t("noSources");
  $("sources-empty").hidden = a.citations.length > 0;
  a.citations.forEach((c, i) => {
    const n = c.n || i + 1; // a producer before `n` numbered by position
    const meta = [c.page ? t("page", c.page) : "", t("score", Number(c.score).toFixed(3)), c.document_id].filter(Boolean).join(" · ");
    list.append(el("li", { id: "src-" + a.id + "-" + n, class: "source", tabindex: "-1", dataset: { n: String(n) } },
      el("span", { class: "n" }, "[" + n + "]"),
      el("strong", { class: "title" }, c.title || c.document_id),
      el("span", { class: "meta" }, meta),
      el("blockquote", { class: "snippet" }, c.snippet || "")));
  });
}

function setBusy(busy) {
  $("send").disabled = busy;
  $("stop").disabled = !busy;
}

function note(a, msg, kind) {
  a.note.textContent = msg;
  a.item.dataset.state = kind;
}

function onMessage(a, m) {
  if (m.request_id) a.item.dataset.requestId = m.request_id;
  switch (m.type) {
    case "accepted":
      break;
    case "token":
      if (!a.text) a.note.textContent = "";
      a.text += m.text;
      renderAnswer(a);
      $("answer-live").append(m.text);
      break;
    case "citations":
      a.citations = m.citations || [];
      renderSources(a);
      break;
    case "done":
      finish(a, m);
      break;
    case "error":
      if (m.code === "rate_limited") note(a, t("rateLimited", Math.ceil((m.retry_after_ms || 1000) / 1000)), "error");
      else if (m.code === "disconnected") note(a, t("disconnected"), "error");
      else if (m.code !== "unknown_id") note(a, t("failed") + ": " + m.code + (m.message ? " — " + m.message : "") + reqRef(m), "error");
      if (m.code !== "timeout" && m.code !== "unknown_id") end(a);
      break;
  }
}

function reqRef(m) {
  return m.request_id ? " (" + t("requestId") + " " + m.request_id + ")" : "";
}

function finish(a, m) {
  switch (m.finish_reason) {
    case "stop": note(a, "", "done"); break;
    case "length": note(a, t("truncated"), "done"); break;
    case "cancelled": note(a, t("stopped"), "cancelled"); break;
    case "refused": note(a, t("refused") + ": " + (m.message || m.code || ""), "refused"); break;
    case "moderated": note(a, t("moderated"), "refused"); break;
    default: if (a.item.dataset.state !== "error") note(a, t("failed") + reqRef(m), "error");
  }
  a.item.dataset.finish = m.finish_reason || "";
  end(a);
}

function end(a) {
  if (current === a) {
    current = null;
    setBusy(false);
  }
}

async function ask(question) {
  if (!chat) {
    setStatus("key-status", t("keyNeeded"), "error");
    $("key").focus();
    return;
  }
  const body = el("div", { class: "body" });
  const noteEl = el("p", { class: "note" }, t("waiting"));
  const item = el("li", { class: "turn", dataset: { state: "streaming" } },
    el("p", { class: "q" }, el("span", { class: "who" }, t("you")), question),
    el("div", { class: "a" }, el("span", { class: "who" }, t("assistant")), body, noteEl));
  $("log").append(item);
  item.scrollIntoView({ block: "end" });
  $("answer-live").textContent = "";
  const a = { id: "", item, body, note: noteEl, text: "", citations: [] };
  current = a;
  setBusy(true);
  try {
    a.id = await chat.ask(question, (m) => onMessage(a, m));
    item.dataset.askId = a.id;
  } catch (e) {
    note(a, e && e.refused ? t("connectFailed") : t("unreachable"), "error");
    end(a);
  }
}

function wireAsk() {
  const q = $("question");
  $("ask-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = q.value.trim();
    if (!text || current) return;
    q.value = "";
    ask(text);
  });
  // Enter sends, unless an IME is composing (Chinese, Japanese…): then
  // Enter confirms the composition. keyCode 229 covers browsers that end
  // composition before keydown.
  q.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || e.shiftKey || e.isComposing || e.keyCode === 229) return;
    e.preventDefault();
    $("ask-form").requestSubmit();
  });
  $("stop").addEventListener("click", () => {
    if (current && current.id) chat.cancel(current.id);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && current && current.id) chat.cancel(current.id);
  });
  // A marker moves focus to its source.
  $("log").addEventListener("click", (e) => {
    const m = e.target.closest("a.marker");
    if (!m) return;
    e.preventDefault();
    const src = document.getElementById(m.getAttribute("href").slice(1));
    if (src) {
      src.focus();
      src.scrollIntoView({ block: "nearest" });
    }
  });
}

// ---- documents ----

let nextPage = "";

async function loadDocs(append) {
  if (!key) return;
  const q = new URLSearchParams({ limit: "100" });
  if (append && nextPage) q.set("after", nextPage);
  let resp;
  try {
    resp = await fetch("/v1/documents?" + q, { headers: auth() });
  } catch {
    setStatus("docs-status", t("unreachable"), "error");
    return;
  }
  await renderDocs(resp, append);
}

async function renderDocs(resp, append) {
  if (!resp.ok) {
    const e = await apiError(resp);
    setStatus("docs-status", t("failed") + ": " + e.code + " — " + e.message, "error");
    return;
  }
  const page = await resp.json();
  const rows = $("doc-rows");
  if (!append) rows.replaceChildren();
  for (const d of page.documents || []) {
    const del = el("button", { type: "button", class: "secondary small", dataset: { id: d.document_id } }, t("del"));
    del.setAttribute("aria-label", t("del") + " " + (d.title || d.document_id));
    del.addEventListener("click", () => deleteDoc(d));
    rows.append(el("tr", { dataset: { id: d.document_id } },
      el("td", {}, d.title || ""), el("td", { class: "mono" }, d.document_id), el("td", {}, String(d.version)), el("td", {}, del)));
  }
  nextPage = page.next || "";
  $("docs-more").hidden = !nextPage;
  setStatus("docs-status", rows.children.length ? "" : t("noDocs"));
}

async function deleteDoc(d) {
  const name = d.title || d.document_id;
  if (!confirm(t("confirmDelete", name))) return;
  const resp = await fetch("/v1/documents/" + encodeURIComponent(d.document_id), { method: "DELETE", headers: auth() });
  if (!resp.ok) {
    const e = await apiError(resp);
    setStatus("docs-status", t("failed") + ": " + e.code + " — " + e.message, "error");
    return;
  }
  await loadDocs(false);
  setStatus("docs-status", t("deleted", name), "ok");
}

// upload sends one file with XMLHttpRequest (fetch reports no upload
// progress), then polls its status until the document is indexed.
function upload(file) {
  const status = el("span", { class: "state" }, t("uploading", 0));
  const bar = el("progress", { max: "100", value: "0" });
  bar.setAttribute("aria-label", file.name);
  const li = el("li", { dataset: { name: file.name } }, el("span", { class: "name" }, file.name), bar, status);
  $("uploads").append(li);
  const form = new FormData();
  form.append("file", file, file.name);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/v1/documents");
  xhr.setRequestHeader("Authorization", "Bearer " + key);
  xhr.upload.addEventListener("progress", (e) => {
    if (!e.lengthComputable) return;
    const p = Math.round((100 * e.loaded) / e.total);
    bar.value = p;
    status.textContent = t("uploading", p);
  });
  const fail = (msg) => {
    li.dataset.state = "failed";
    status.textContent = t("uploadFailed") + ": " + msg;
  };
  xhr.addEventListener("error", () => fail(t("unreachable")));
  xhr.addEventListener("load", () => {
    let b = {};
    try { b = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
    if (xhr.status !== 202) {
      fail(b.error ? b.error.code + " — " + b.error.message : String(xhr.status));
      return;
    }
    bar.value = 100;
    li.dataset.id = b.document_id;
    li.dataset.state = b.status;
    status.textContent = t(b.status === "unchanged" ? "unchanged" : "accepted");
    loadDocs(false);
    poll(b.document_id, li, status);
  });
  xhr.send(form);
}

async function poll(id, li, status) {
  for (let delay = 250; ; delay = Math.min(delay * 2, 4000)) {
    let resp;
    try {
      resp = await fetch("/v1/documents/" + encodeURIComponent(id), { headers: auth() });
    } catch {
      await new Promise((r) => setTimeout(r, delay));
      continue;
    }
    if (!resp.ok) {
      const e = await apiError(resp);
      li.dataset.state = "failed";
      status.textContent = t("uploadFailed") + ": " + e.code;
      return;
    }
    const d = await resp.json();
    li.dataset.state = d.status;
    status.textContent = t(d.status === "indexed" ? "indexed" : "active");
    if (d.status === "indexed") return;
    await new Promise((r) => setTimeout(r, delay));
  }
}

function wireDocs() {
  const files = $("files");
  files.addEventListener("change", () => {
    if (!key) return setStatus("key-status", t("keyNeeded"), "error");
    for (const f of files.files) upload(f);
    files.value = "";
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.dataset.over = "1"; });
  drop.addEventListener("dragleave", () => { delete drop.dataset.over; });
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    delete drop.dataset.over;
    if (!key) return setStatus("key-status", t("keyNeeded"), "error");
    for (const f of e.dataTransfer.files) upload(f);
  });
  $("docs-refresh").addEventListener("click", () => loadDocs(false));
  $("docs-more").addEventListener("click", () => loadDocs(true));
}

// ---- audit export ----

function wireAudit() {
  $("audit-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!key) return setStatus("key-status", t("keyNeeded"), "error");
    const q = new URLSearchParams();
    if ($("audit-since").value) q.set("since", $("audit-since").value);
    if ($("audit-until").value) q.set("until", $("audit-until").value);
    if ($("audit-type").value.trim()) q.set("type", $("audit-type").value.trim());
    // The verification status comes as the last line: fetch cannot read trailers.
    q.set("summary", "1");
    setStatus("audit-status", t("auditRunning"));
    let resp;
    try {
      resp = await fetch("/v1/audit/export?" + q, { headers: auth() });
    } catch {
      return setStatus("audit-status", t("unreachable"), "error");
    }
    if (!resp.ok) {
      const err = await apiError(resp);
      // The page names no tenant, so a 403 means the key lacks the group.
      return setStatus("audit-status", resp.status === 403 ? t("auditForbidden") : t("failed") + ": " + err.code + " — " + err.message, "error");
    }
    const text = await resp.text();
    const lines = text.split("\n").filter((l) => l.trim());
    // The last line is the export's own summary (status, records, shredded);
    // the file keeps only the records, as the CLI writes them.
    let summary = null;
    try {
      summary = JSON.parse(lines[lines.length - 1]).summary || null;
    } catch {
      summary = null;
    }
    if (summary) lines.pop();
    const n = lines.length;
    const status = summary ? summary.status : null;
    const shredded = summary && summary.shredded ? summary.shredded.reduce((sum, r) => sum + (r.records || 0), 0) : 0;
    const blob = new Blob(lines.length ? [lines.join("\n") + "\n"] : [], { type: "application/x-ndjson" });
    const a = el("a", { href: URL.createObjectURL(blob), download: "audit-" + new Date().toISOString().slice(0, 10) + ".ndjson" });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    const verdict = status ? t("auditVerify", status) + (shredded ? " " + t("auditShredded", shredded) : "") : t("auditNoSummary");
    setStatus("audit-status", t("auditDone", n) + " " + verdict, status !== "ok" ? "error" : "ok");
    $("audit-status").dataset.verify = status || "";
    $("audit-status").dataset.records = String(n);
  });
}

// ---- start ----

translate();
wireAsk();
wireDocs();
wireAudit();
$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  useKey($("key").value.trim());
});
$("key-forget").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  $("key").value = "";
  key = "";
  if (chat) chat.close();
  chat = null;
  $("doc-rows").replaceChildren();
  setStatus("key-status", t("keyForgotten"));
});
if (key) {
  $("key").value = key;
  useKey(key);
} else {
  setStatus("key-status", t("keyNeeded"));
}
document.body.dataset.ready = "1";
