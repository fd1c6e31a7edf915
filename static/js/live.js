// Live updates, and what the page does when they cannot get through; the state is shown in #connection.
//
// htmx's hx-sse extension holds the tab's event stream (#live). A proxy may refuse the stream, or hold it
// back (a compressing proxy delivers nothing, not even headers, until the response ends), and then the
// extension waits forever. So this file watches the stream's bytes: it gives each stream request its own
// fetch (ctx.fetch, htmx's documented per-request override) that notes every chunk. The server sends its
// first bytes at once and a heartbeat comment at least every STREAM_HEARTBEAT_SECONDS, so silence means
// the stream is not getting through: the page then polls chat.newer for what came after its cursor (with
// htmx.ajax: its swap applies the out-of-band parts), says so, and tries a fresh stream later, backing off.
//
// A stream is restarted, never resumed in place: the extension's own reconnecting is off (htmx-config in
// base.html), because its reconnects use a fetch no one can watch. Restarting means a fresh #live (a copy
// of the page's) whose URL carries the cursor; the old one leaves through htmx's "delete" swap, whose
// cleanup makes the extension close that stream. The cursor is the SSE id of the last event
// (htmx:sse:before:message). A message may arrive twice (a new stream resumes from the cursor, a poll
// overlaps it): its message-<seq> id dedupes it.
//
// The page names itself (a random tab id, in every stream URL and on <body data-tab>), so presence.js can say
// goodbye for it when it closes. The state shown is the truth as far as the page can know it: offline when the
// browser says so or a send found no network (chatroom:unreachable from composer.js), then reconnecting. When
// the server ends the stream (the room ended, the host removed this reader) the other scripts are told
// (chatroom:closed {why}): the composer shuts, "Here now" and typing are cleared.
(() => {
  "use strict";
  const d = document, log = d.getElementById("log"), status = d.getElementById("connection");
  let slot = d.getElementById("live");
  if (!log || !slot || !status || !window.fetch || !window.ReadableStream) return;
  const TAB = [...crypto.getRandomValues(new Uint8Array(10))].map((b) => (b % 36).toString(36)).join("");
  d.body.dataset.tab = TAB;
  const firstUrl = new URL(slot.getAttribute("hx-sse:connect"), location.href);
  firstUrl.searchParams.set("tab", TAB);
  slot.setAttribute("hx-sse:connect", firstUrl.pathname + firstUrl.search); // before htmx opens it
  const model = slot.cloneNode(false), cfg = slot.dataset, home = slot.parentNode, typing = d.getElementById("typing");
  const ms = (value, fallback) => { const n = parseInt(value, 10); return n > 0 ? n : fallback; };
  const STALL = ms(cfg.stallMs, 10000), POLL = ms(cfg.pollMs, 5000), RETRY = ms(cfg.retryMs, 30000);
  const SILENT = Math.max(STALL, 2.5 * ms(cfg.heartbeatMs, 15000)); // a live stream this quiet has stalled
  const TEXT = {
    connecting: "Connecting…",
    live: "Live: new messages appear as they are posted.",
    reconnecting: "Connection lost. Reconnecting…",
    fallback: "Live updates cannot get through this network. Checking for new messages every " +
      Math.round(POLL / 1000) + " seconds.",
    gone: "Not connected: reload the page to join again.",
    removed: "Not connected: the host removed you from this room.",
    banned: "Not connected: the host removed you from this room for good.",
    offline: "Offline: no network. Messages you write are kept until you can send them.",
    refused: "Live updates are refused for now (too many open tabs or connections). Checking for new messages every " +
      Math.round(POLL / 1000) + " seconds.",
  };
  TEXT.ended = status.dataset.endedText || TEXT.gone; // the page's words (chat/_ended.html)
  const streamUrl = new URL(slot.getAttribute("hx-sse:connect"), location.href);
  const newerUrl = new URL(cfg.newerUrl, location.href);
  const page = { seq: ms(cfg.after, 0), rev: ms(cfg.rev, 0) };
  let fromStream = null, fromPoll = null, state = "", lastBytes = 0, watchdog = 0;
  let retryTimer = 0, retryDelay = RETRY, reconnectTimer = 0, attempts = 0, again = false;
  let pollTimer = 0, polling = false;
  const quiet = (ms) => d.dispatchEvent(new CustomEvent("chatroom:quiet", { detail: { ms } }));

  function setState(next, text) {
    state = next;
    status.dataset.state = next;
    if (status.textContent !== text) status.textContent = text;
  }
  function parseCursor(id) {
    const m = /^(\d+)(?:\.(\d+))?$/.exec(id || "");
    return m ? { seq: +m[1], rev: m[2] ? +m[2] : null } : null;
  }
  // Where to resume: past every message any source delivered; changes from the oldest point either vouches
  // for (a change sent twice is swapped in twice, harmlessly; one skipped would be wrong).
  function cursor() {
    let seq = page.seq;
    const revs = [];
    [fromStream, fromPoll].forEach((c) => {
      if (!c) return;
      seq = Math.max(seq, c.seq);
      if (c.rev !== null) revs.push(c.rev);
    });
    return { seq, rev: revs.length ? Math.min(...revs) : page.rev };
  }
  // New messages already on the page are dropped; out-of-band ones (edits, removals) are kept.
  function dedupe(html) {
    const tpl = d.createElement("template");
    let fresh = 0, dropped = false;
    tpl.innerHTML = html;
    [...tpl.content.children].forEach((el) => {
      if (!el.classList.contains("message") || el.hasAttribute("hx-swap-oob")) return;
      if (el.id && d.getElementById(el.id)) { el.remove(); dropped = true; } else fresh++;
    });
    return { html: dropped ? tpl.innerHTML : html, fresh };
  }

  // -- the stream's bytes ------------------------------------------------------------------------------
  d.addEventListener("htmx:before:request", (evt) => {
    const ctx = evt.detail.ctx, el = ctx.sourceElement;
    if (el !== slot) return;
    ctx.fetch = (url, init) => fetch(url, init).then((res) => watch(res, el));
  });
  function watch(res, el) {
    if (!res.ok || !res.body || (res.headers.get("Content-Type") || "").indexOf("text/event-stream") < 0) return res;
    const reader = res.body.getReader();
    const body = new ReadableStream({
      pull: (controller) => reader.read().then((chunk) => {
        if (chunk.done) { controller.close(); return; }
        gotBytes(el);
        controller.enqueue(chunk.value);
      }),
      cancel: (reason) => reader.cancel(reason),
    });
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  }
  function gotBytes(el) {
    if (el !== slot || state === "closed") return;
    lastBytes = Date.now();
    if (state === "live") return;
    clearTimeout(watchdog);
    watchdog = 0;
    clearTimeout(retryTimer);
    retryDelay = RETRY;
    attempts = 0;
    stopPolling();
    quiet(1000);
    setState("live", TEXT.live);
  }
  function arm() {
    if (!watchdog) watchdog = setTimeout(() => { watchdog = 0; fallback(); }, STALL);
  }
  setInterval(() => {
    if (state === "live" && Date.now() - lastBytes > SILENT) {
      setState("reconnecting", TEXT.reconnecting);
      startStream(false);
    }
  }, 2000);

  function fallback() {
    if (state === "closed" || state === "offline") return;
    stopStream();
    setState("fallback", TEXT.fallback);
    startPolling();
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => startStream(false), retryDelay);
    retryDelay = Math.min(retryDelay * 2, RETRY * 8);
  }
  // The stream ended or broke (the server went away, a proxy cut it): a fresh one after a pause, backing off
  // as the extension would (0.5 s doubling to a minute, ±30%), while the watchdog decides on falling back.
  function lost() {
    if (state === "closed" || state === "offline") return;
    if (state === "live") setState("reconnecting", TEXT.reconnecting);
    arm();
    clearTimeout(reconnectTimer);
    const delay = Math.min(500 * 2 ** attempts++, 60000) * (0.7 + 0.6 * Math.random());
    reconnectTimer = setTimeout(() => startStream(true), delay);
  }
  // A stream's request failed: refused, or the server unreachable. Over a cap (429, 503) the server says when to
  // try again (Retry-After, seconds): poll until then, never retry at once.
  function failed(code, after) {
    if (code === 401 || code === 403 || code === 404) close(TEXT.gone);
    else if (code === 429 || code === 503) {
      fallback();
      clearTimeout(watchdog); // the stall check of this request: it was answered, with a refusal
      watchdog = 0;
      setState("fallback", TEXT.refused);
      clearTimeout(retryTimer);
      retryTimer = setTimeout(() => startStream(false), ms(after, 60) * (800 + 400 * Math.random()));
    }
    else if (navigator.onLine === false) offline();
    else if (again) lost();
    else fallback();
  }
  function close(text, why) {
    clearTimeout(watchdog);
    watchdog = 0;
    clearTimeout(retryTimer);
    stopPolling();
    stopStream();
    setState("closed", text);
    d.dispatchEvent(new CustomEvent("chatroom:closed", { detail: { why: why || "gone" } }));
  }
  // The network went away (the browser says so, or a send found none): say so, and try again once it is back.
  function offline() {
    if (state === "closed") return;
    stopStream();
    stopPolling();
    clearTimeout(watchdog);
    watchdog = 0;
    clearTimeout(retryTimer);
    setState("offline", TEXT.offline);
  }
  window.addEventListener("offline", offline);
  window.addEventListener("online", () => {
    if (state !== "offline") return;
    setState("reconnecting", TEXT.reconnecting);
    attempts = 0;
    startStream(true);
  });
  d.addEventListener("chatroom:unreachable", () => {
    if (state === "closed" || state === "offline") return;
    if (navigator.onLine === false) { offline(); return; }
    setState("reconnecting", TEXT.reconnecting); // the stream may well be dead too: check with a fresh one
    startStream(true);
  });

  function startStream(reconnecting) {
    stopStream();
    const c = cursor(), el = model.cloneNode(false);
    streamUrl.searchParams.set("after", c.seq);
    streamUrl.searchParams.set("rev", c.rev);
    streamUrl.searchParams.set("tab", TAB);
    el.setAttribute("hx-sse:connect", streamUrl.pathname + streamUrl.search);
    home.insertBefore(el, typing && typing.parentNode === home ? typing : null);
    slot = el;
    again = reconnecting;
    arm();
    htmx.process(el);
  }
  function stopStream() {
    const el = slot;
    slot = null;
    clearTimeout(reconnectTimer);
    if (!el || !el.isConnected) return;
    htmx.trigger(el, "htmx:abort"); // a request still waiting for its headers
    htmx.swap({ sourceElement: el, target: el, swap: "delete", text: "" }); // and an open stream
  }
  const ours = (evt) => slot !== null && evt.target === slot;
  const streaming = (evt) => slot !== null && evt.detail.ctx && evt.detail.ctx.sourceElement === slot;

  // A stream's first response is an ordinary htmx request: an error page must not land in the log.
  d.addEventListener("htmx:before:response", (evt) => {
    if (!streaming(evt)) return;
    evt.preventDefault();
    const res = evt.detail.ctx.response;
    failed(res.status, res.headers.get("Retry-After"));
  });
  d.addEventListener("htmx:error", (evt) => { if (streaming(evt)) failed(0); });
  d.addEventListener("htmx:sse:close", (evt) => { if (ours(evt) && evt.detail.reason === "ended") lost(); });
  // The server ends a stream with a named "close" event: the room ended, the host removed this reader, or the
  // host signed out.
  d.addEventListener("close", (evt) => {
    if (!ours(evt)) return;
    const why = evt.detail && evt.detail.data;
    close(/^(ended|removed|banned)$/.test(why) ? TEXT[why] : TEXT.gone, why); // host.js words a host's "signed_out"
  });
  d.addEventListener("htmx:sse:before:message", (evt) => {
    if (!ours(evt)) return;
    const message = evt.detail.message, c = parseCursor(message.id);
    if (c) fromStream = c;
    if (!message.event && message.data && message.data.indexOf('id="message-') >= 0) message.data = dedupe(message.data).html;
  });

  // -- polling, while the stream cannot get through ------------------------------------------------------
  function startPolling() {
    if (pollTimer) return;
    pollTimer = setInterval(poll, POLL);
    poll();
  }
  function stopPolling() {
    clearInterval(pollTimer);
    pollTimer = 0;
  }
  // The same partials as the stream: new messages appended to #log, the rest out of band. #connection
  // sends the request, so its events tell a poll apart.
  function poll() {
    if (polling || state === "closed") return;
    polling = true;
    const c = cursor(), done = () => { polling = false; };
    newerUrl.searchParams.set("after", c.seq);
    newerUrl.searchParams.set("rev", c.rev);
    htmx.ajax("GET", newerUrl.pathname + newerUrl.search, { source: status, target: log, swap: "beforeend" }).then(done, done);
  }
  const polled = (evt) => evt.detail.ctx && evt.detail.ctx.sourceElement === status;
  d.addEventListener("htmx:before:response", (evt) => {
    if (!polled(evt)) return;
    const code = evt.detail.ctx.response.status;
    if (code >= 200 && code < 300) return;
    evt.preventDefault();
    if (code === 401 || code === 403 || code === 404) close(TEXT.gone);
  });
  d.addEventListener("htmx:error", (evt) => { if (polled(evt) && navigator.onLine === false) offline(); });
  d.addEventListener("htmx:after:request", (evt) => {
    if (!polled(evt)) return;
    const ctx = evt.detail.ctx, answer = dedupe(ctx.text);
    ctx.text = answer.html;
    ctx.cursor = parseCursor(ctx.response.headers.get("Chatroom-Cursor"));
    ctx.ended = ctx.response.headers.get("Chatroom-Room-Status") === "ended";
    if (answer.fresh > 1) quiet(400);
  });
  d.addEventListener("htmx:after:swap", (evt) => {
    const ctx = evt.detail.ctx, source = ctx && ctx.sourceElement;
    if (source === status) {
      if (ctx.cursor) fromPoll = ctx.cursor;
      if (ctx.ended) close(TEXT.ended, "ended");
    } else if (source && source.id === "composer" && state === "fallback") {
      setTimeout(poll, 300); // one's own message, soon
    }
  });

  setState("connecting", TEXT.connecting);
  arm();
})();
