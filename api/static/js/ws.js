// The /ws client: hello → ready, JSON and binary frames, an app-level ping (browsers cannot send
// protocol pings), and capped reconnects that resume the same chat (docs/websocket.md).

const PING_EVERY_MS = 20_000;
const PONG_WITHIN_MS = 10_000;
const MAX_FAILURES = 5;            // consecutive failed (re)connects before giving up
const STABLE_AFTER_MS = 30_000;    // a connection that lived this long resets the failure count
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];

const CLOSE_IDLE = 4000;           // the server closed a socket that had been quiet too long

// Close codes after which reconnecting cannot help (docs/websocket.md "Close codes").
const FATAL_CLOSES = new Map([
  [4401, "unauthorized"],
  [4403, "origin_forbidden"],
  [4404, "chat_not_found"],
]);

let frameCounter = 0;
export const nextId = (prefix = "c") => `${prefix}${Date.now().toString(36)}${(frameCounter++).toString(36)}`;

/**
 * Events: "ready" (the ready frame), "frame" (any other JSON frame), "binary" (ArrayBuffer),
 * "status" ({state: connecting|open|reconnecting|idle|offline|closed, attempt?}),
 * "fatal" ({code, reason}) when the server refused us for good.
 */
export class ChatSocket extends EventTarget {
  constructor({ token, chatId = null, url = defaultUrl() }) {
    super();
    this.token = token;
    this.chatId = chatId;
    this.url = url;
    this.ws = null;
    this.ready = false;
    this.closedByUs = false;
    this.failures = 0;
    this.queue = [];          // frames sent before `ready`, flushed in order after it
    this.timers = {};
    this.openedAt = 0;
    this.readyFrame = null;
    this.readyWaiters = [];
    this.idle = false;            // closed by the server for idleness: reopened on next use
    /** Whether to reconnect at once after an idle close (e.g. an answer is still streaming). */
    this.stayOpen = () => false;
  }

  /** Connect (or reconnect); resolves with the ready frame. */
  connect() {
    this.closedByUs = false;
    this.#open();
    return this.whenReady();
  }

  whenReady() {
    if (this.ready) return Promise.resolve(this.readyFrame);
    this.#wake();
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /** Send a JSON frame (queued until ready). Returns the frame's id. */
  send(frame) {
    const out = { id: nextId(frame.type === "ping" ? "p" : "c"), ...frame };
    if (this.ready && this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(out));
    else if (out.type !== "ping") {
      this.queue.push(out);
      this.#wake();
    }
    return out.id;
  }

  /** Send raw bytes (PCM16 audio); dropped when not connected, as stale audio is useless. */
  sendBinary(buffer) {
    if (this.ready && this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(buffer);
      return true;
    }
    return false;
  }

  get isOpen() {
    return this.ready && this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  close() {
    this.closedByUs = true;
    this.#clearTimers();
    this.ready = false;
    this.queue = [];
    this.#rejectWaiters(new Error("closed"));
    if (this.ws) {
      try { this.ws.close(1000, "bye"); } catch { /* already closed */ }
      this.ws = null;
    }
    this.#status("closed");
  }

  /** After giving up (offline), try again now. */
  retry() {
    this.failures = 0;
    this.closedByUs = false;
    this.#open();
  }

  /** Reopen a socket the server closed for idleness, now that it is needed again. */
  #wake() {
    if (this.idle && !this.closedByUs) this.#open();
  }

  // --- internals ---------------------------------------------------------------------------

  #open() {
    this.idle = false;
    this.#clearTimers();
    if (this.ws) {
      try { this.ws.close(); } catch { /* ignore */ }
    }
    this.ready = false;
    this.#status(this.failures ? "reconnecting" : "connecting", { attempt: this.failures });
    const ws = new WebSocket(this.url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (ws !== this.ws) return;
      this.openedAt = Date.now();
      const hello = { type: "hello", token: this.token, id: nextId("h") };
      if (this.chatId) hello.chat_id = this.chatId;
      ws.send(JSON.stringify(hello));
    });
    ws.addEventListener("message", (ev) => this.#onMessage(ws, ev));
    ws.addEventListener("close", (ev) => this.#onClose(ws, ev));
    // "error" is always followed by "close"; the close handler does the work.
  }

  #onMessage(ws, ev) {
    if (ws !== this.ws) return;
    this.#armPong(); // any frame proves the connection is alive
    if (typeof ev.data !== "string") {
      this.dispatchEvent(new CustomEvent("binary", { detail: ev.data }));
      return;
    }
    let frame;
    try { frame = JSON.parse(ev.data); } catch { return; }
    if (frame.type === "ready") {
      this.ready = true;
      this.readyFrame = frame;
      this.chatId = frame.chat_id;
      this.#status("open");
      this.#startPing();
      const queued = this.queue;
      this.queue = [];
      for (const out of queued) ws.send(JSON.stringify(out));
      for (const w of this.readyWaiters.splice(0)) w.resolve(frame);
      this.dispatchEvent(new CustomEvent("ready", { detail: frame }));
      return;
    }
    if (frame.type === "pong") return;
    this.dispatchEvent(new CustomEvent("frame", { detail: frame }));
  }

  #onClose(ws, ev) {
    if (ws !== this.ws) return;
    this.#clearTimers();
    const wasReady = this.ready;
    this.ready = false;
    this.ws = null;
    if (this.closedByUs) return;
    if (FATAL_CLOSES.has(ev.code)) {
      const reason = FATAL_CLOSES.get(ev.code);
      this.#rejectWaiters(Object.assign(new Error(reason), { code: reason }));
      this.dispatchEvent(new CustomEvent("fatal", { detail: { code: reason, closeCode: ev.code } }));
      this.#status("closed");
      return;
    }
    if (ev.code === CLOSE_IDLE && wasReady) {
      // Not a failure: the server closes quiet sockets. Come back at once only if something is
      // still expected (an answer streaming, the mic open); otherwise on the next use.
      this.failures = 0;
      if (this.stayOpen()) {
        this.#status("reconnecting", { attempt: 0 });
        this.timers.reconnect = window.setTimeout(() => this.#open(), 100);
      } else {
        this.idle = true;
        this.#status("idle");
      }
      return;
    }
    if (wasReady && Date.now() - this.openedAt > STABLE_AFTER_MS) this.failures = 0;
    this.failures += 1;
    if (this.failures > MAX_FAILURES) {
      this.#rejectWaiters(Object.assign(new Error("offline"), { code: "offline" }));
      this.#status("offline");
      return;
    }
    const delay = BACKOFF_MS[Math.min(this.failures - 1, BACKOFF_MS.length - 1)] * (0.8 + Math.random() * 0.4);
    this.#status("reconnecting", { attempt: this.failures, inMs: Math.round(delay) });
    this.timers.reconnect = window.setTimeout(() => this.#open(), delay);
  }

  #startPing() {
    this.timers.ping = window.setInterval(() => {
      if (!this.isOpen) return;
      this.ws.send(JSON.stringify({ type: "ping", id: nextId("p") }));
      this.#armPong();
    }, PING_EVERY_MS);
  }

  #armPong() {
    window.clearTimeout(this.timers.pong);
    if (!this.timers.ping) return;
    // No frame at all since the last ping: the connection is dead even if the browser has not noticed.
    this.timers.pong = window.setTimeout(() => {
      const dead = this.ws;
      if (!dead) return;
      // Do not wait for the browser's closing handshake on a dead link: reconnect now.
      this.#onClose(dead, { code: 1006 });
      try { dead.close(4000, "no pong"); } catch { /* ignore */ }
    }, PING_EVERY_MS + PONG_WITHIN_MS);
  }

  #clearTimers() {
    window.clearInterval(this.timers.ping);
    window.clearTimeout(this.timers.pong);
    window.clearTimeout(this.timers.reconnect);
    this.timers = {};
  }

  #rejectWaiters(error) {
    for (const w of this.readyWaiters.splice(0)) w.reject(error);
  }

  #status(state, extra = {}) {
    this.dispatchEvent(new CustomEvent("status", { detail: { state, ...extra } }));
  }
}

function defaultUrl() {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}/ws`;
}
