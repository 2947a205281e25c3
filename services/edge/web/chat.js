// A client of the edge's chat protocol (docs/edge.md), with no UI: a
// reference for other frontends. One WebSocket, many asks multiplexed by id.

// keyProtocol carries the API key in Sec-WebSocket-Protocol, because
// browsers cannot set Authorization on a WebSocket, and a URL query would
// leak the key into access logs and history.
export function keyProtocol(key) {
  const bytes = new TextEncoder().encode(key);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return "tributary.key." + btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function chatURL(loc = window.location) {
  return (loc.protocol === "https:" ? "wss://" : "ws://") + loc.host + "/v1/chat";
}

// ChatClient keeps one connection. ask() returns the ask's id; handlers
// get every server message of that ask: accepted, token, citations, done,
// error.
export class ChatClient {
  constructor(key, url = chatURL()) {
    this.key = key;
    this.url = url;
    this.ws = null;
    this.opening = null;
    this.handlers = new Map();
    this.next = 0;
  }

  // connect resolves once the socket is open; it rejects with
  // {refused: true} when the socket closed before opening (the edge
  // answers a wrong key with 401 before the upgrade, which browsers report
  // only as a failed connection).
  connect() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) return Promise.resolve();
    if (this.opening) return this.opening;
    this.opening = new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, ["tributary.v1", keyProtocol(this.key)]);
      let opened = false;
      ws.onopen = () => { opened = true; this.ws = ws; this.opening = null; resolve(); };
      ws.onmessage = (ev) => this.dispatch(ev.data);
      ws.onclose = (ev) => {
        this.opening = null;
        if (this.ws === ws) this.ws = null;
        if (!opened) { reject({ refused: true, code: ev.code }); return; }
        // Every ask in flight on this socket is over.
        for (const [id, h] of this.handlers) h({ type: "error", id, code: "disconnected", message: "connection closed (" + ev.code + ")" });
        this.handlers.clear();
      };
    });
    return this.opening;
  }

  dispatch(data) {
    let m;
    try { m = JSON.parse(data); } catch { return; }
    const h = this.handlers.get(m.id);
    if (!h) return;
    // An error with no done after it ends the ask (see the error codes).
    const final = m.type === "done" || (m.type === "error" && ["rate_limited", "unavailable", "too_many_requests", "duplicate_id", "invalid_request", "bad_message"].includes(m.code));
    if (final) this.handlers.delete(m.id);
    h(m);
  }

  async ask(question, handler, opts = {}) {
    await this.connect();
    const id = "a" + (++this.next);
    this.handlers.set(id, handler);
    const msg = { type: "ask", id, question };
    if (opts.conversationId) msg.conversation_id = opts.conversationId;
    if (opts.topK) msg.top_k = opts.topK;
    this.ws.send(JSON.stringify(msg));
    return id;
  }

  cancel(id) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "cancel", id }));
  }

  close() {
    if (this.ws) this.ws.close(1000);
    this.ws = null;
  }
}

// markerPattern finds citation markers: [4], [1, 3], ［2］, 【2】.
export const markerPattern = /[\[［【]\s*(\d{1,3}(?:\s*[,，、]\s*\d{1,3})*)\s*[\]］】]/g;

// splitMarkers cuts text into strings and {numbers: [n…], raw} markers.
export function splitMarkers(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(markerPattern)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    out.push({ raw: m[0], numbers: m[1].split(/\s*[,，、]\s*/).map(Number) });
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}
