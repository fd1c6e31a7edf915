// Enhancements for the room page. Everything here is optional: the page works without it.
//
// Live updates. htmx's hx-sse extension keeps one event stream per tab (#live). A proxy may refuse the
// stream, or hold it back (a compressing proxy delivers nothing until the response ends), and then the
// extension waits forever on a silent socket. So we watch the stream's bytes ourselves, with a thin
// wrapper around fetch for the stream URL only: the server sends its first bytes at once and a heartbeat
// at least every STREAM_HEARTBEAT_SECONDS, so silence means the stream is not getting through. Then the
// page polls chat.newer for what came after its cursor, says so, and tries a fresh stream later, backing
// off. A message may arrive twice (a new stream resumes from the cursor): its message-<seq> id dedupes it.
(function () {
  "use strict";
  var d = document, root = d.documentElement;
  root.classList.add("js");
  var tokenMeta = d.querySelector('meta[name="csrf-token"]');
  var csrf = tokenMeta ? tokenMeta.content : "";
  var each = function (list, fn) { Array.prototype.slice.call(list).forEach(fn); };
  function $(id) { return d.getElementById(id); }

  // htmx requests carry the CSRF token in a header, so fragments need no token of their own.
  d.addEventListener("htmx:config:request", function (evt) {
    evt.detail.ctx.request.headers["X-CSRFToken"] = csrf;
  });

  // The theme switch, without a page load (without JavaScript the form posts and comes back).
  d.addEventListener("submit", function (evt) {
    var form = evt.target, choice = evt.submitter && evt.submitter.value;
    if (!form.classList.contains("theme-switch") || !choice) return;
    evt.preventDefault();
    var body = new URLSearchParams({ theme: choice, csrf_token: csrf });
    fetch(form.action, { method: "POST", body: body, headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (res) {
        if (!res.ok) throw new Error(res.status);
        if (choice === "system") delete root.dataset.theme; else root.dataset.theme = choice;
        var scheme = d.querySelector('meta[name="color-scheme"]');
        if (scheme) scheme.content = choice === "system" ? "light dark" : choice;
        each(form.querySelectorAll("button[name=theme]"), function (b) {
          b.setAttribute("aria-pressed", String(b.value === choice));
        });
      })
      .catch(function () {
        var input = d.createElement("input");
        input.type = "hidden"; input.name = "theme"; input.value = choice;
        form.appendChild(input);
        form.submit();
      });
  });

  var log = $("log"); // the list messages are appended to
  if (!log) return;
  var pane = log.closest('[role="log"]') || log; // the live region around it, which scrolls
  var me = d.body.dataset.member;

  // -- announcements: the log is the live region; a burst is told as a count; the reader may mute --------
  var announcer = $("announcer"), typingBox = $("typing"), muteBox = $("mute");
  var muted = false;
  try { muted = localStorage.getItem("chatroom.mute") === "1"; } catch (e) { /* storage blocked: not muted */ }
  var burst = { on: false, count: 0, timer: 0 };
  function regions() {
    pane.setAttribute("aria-live", muted || burst.on ? "off" : "polite");
    if (typingBox) typingBox.setAttribute("aria-live", muted ? "off" : "polite");
  }
  if (muteBox) {
    muteBox.checked = muted;
    muteBox.addEventListener("change", function () {
      muted = muteBox.checked;
      try { localStorage.setItem("chatroom.mute", muted ? "1" : "0"); } catch (e) { /* not remembered */ }
      regions();
    });
  }
  regions();
  function announce(text) {
    if (!announcer) return;
    announcer.textContent = "";
    setTimeout(function () { announcer.textContent = text; }, 100);
  }
  // The catch-up after a (re)connect, or a poll that brought several messages: the log is quiet while
  // they land (the quiet state must outlast a rendering frame), then one announcement of the count.
  function quiet(ms) {
    if (!burst.on) { burst.on = true; burst.count = 0; regions(); }
    clearTimeout(burst.timer);
    burst.timer = setTimeout(function () {
      var n = burst.count;
      burst.on = false;
      regions();
      if (n && !muted) announce(n === 1 ? "1 new message" : n + " new messages");
    }, ms);
  }

  // -- scrolling: follow the newest only from the bottom; otherwise offer a way there -------------------
  var reduce = window.matchMedia ? matchMedia("(prefers-reduced-motion: reduce)") : { matches: true };
  var jump = $("jump"), stick = true, unseen = 0;
  function atBottom() { return pane.scrollHeight - pane.scrollTop - pane.clientHeight < 48; }
  function toBottom(smooth) {
    pane.scrollTo({ top: pane.scrollHeight, behavior: smooth && !reduce.matches ? "smooth" : "auto" });
  }
  function seen() {
    unseen = 0;
    if (jump) jump.hidden = true;
  }
  function arrived(n, mine) {
    if (stick || mine) { toBottom(false); stick = true; return; }
    unseen += n;
    if (!jump) return;
    jump.textContent = unseen === 1 ? "1 new message" : unseen + " new messages";
    jump.hidden = false;
  }
  if (jump) jump.addEventListener("click", function () {
    toBottom(true);
    stick = true;
    seen();
    pane.focus({ preventScroll: true });
  });
  pane.addEventListener("scroll", function () {
    stick = atBottom();
    if (stick) seen();
    if (pane.scrollTop < 64) older();
  }, { passive: true });
  window.addEventListener("resize", function () { if (stick) toBottom(false); });
  var target = location.hash.length > 1 ? $(decodeURIComponent(location.hash.slice(1))) : null;
  if (target && pane.contains(target)) target.scrollIntoView({ block: "center" });
  else toBottom(false);
  stick = atBottom();

  // -- older messages: at the top of the log, or by the "Older messages" link; the view stays put ---------
  // (htmx re-points ctx.sourceElement once the link is swapped out, so the request is known by its ctx.)
  var olderRequest = null, keep = null;
  function older() {
    var link = $("older-link");
    if (link && !olderRequest) link.click();
  }
  d.addEventListener("htmx:before:request", function (evt) {
    var ctx = evt.detail.ctx;
    if (ctx && ctx.sourceElement && ctx.sourceElement.id === "older-link") olderRequest = ctx;
  });
  d.addEventListener("htmx:before:swap", function (evt) {
    if (evt.detail.ctx !== olderRequest || keep) return;
    keep = { height: pane.scrollHeight, top: pane.scrollTop, focused: d.activeElement === $("older-link") };
  });
  d.addEventListener("htmx:after:swap", function (evt) {
    if (!keep || evt.detail.ctx !== olderRequest) return;
    pane.scrollTop = keep.top + (pane.scrollHeight - keep.height);
    var next = $("older-link") || $("older-start");
    if (keep.focused && next) next.focus();
    keep = null;
  });
  d.addEventListener("htmx:finally:request", function (evt) {
    if (evt.detail.ctx === olderRequest) olderRequest = keep = null;
  });

  // -- each new message: a copy button, and the count or the scroll -------------------------------------
  var canCopy = !!(navigator.clipboard && navigator.clipboard.writeText);
  function addCopy(li) {
    if (!canCopy || li.querySelector(".copy") || !li.querySelector(".message__body:not(.message__body--removed)")) return;
    var alias = li.querySelector(".message__alias");
    var button = d.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy message" + (alias ? " from " + alias.textContent : ""));
    (li.querySelector(".message__meta") || li).appendChild(button);
  }
  log.addEventListener("click", function (evt) {
    var button = evt.target.closest ? evt.target.closest(".copy") : null;
    if (!button) return;
    var text = button.closest(".message").querySelector(".message__body");
    navigator.clipboard.writeText(text ? text.textContent : "").then(function () {
      var label = button.getAttribute("aria-label");
      button.textContent = "Copied";
      button.setAttribute("aria-label", "Copied");
      announce("Message copied.");
      setTimeout(function () { button.textContent = "Copy"; button.setAttribute("aria-label", label); }, 1500);
    }, function () {
      announce("Could not copy. Select the text and copy it instead.");
    });
  });
  var maxSeq = 0;
  each(log.querySelectorAll(".message"), function (li) {
    maxSeq = Math.max(maxSeq, +li.dataset.seq || 0);
    addCopy(li);
  });
  new MutationObserver(function (records) {
    var fresh = 0, mine = false;
    records.forEach(function (record) {
      each(record.addedNodes, function (node) {
        if (node.nodeType !== 1 || !node.classList.contains("message")) return;
        addCopy(node);
        var seq = +node.dataset.seq || 0;
        if (seq > maxSeq) {
          maxSeq = seq;
          fresh++;
          if (node.dataset.author === me) mine = true;
        }
      });
    });
    if (!fresh) return;
    if (burst.on) { burst.count += fresh; quiet(500); }
    arrived(fresh, mine);
  }).observe(log, { childList: true });

  // -- the composer: Enter sends, Shift+Enter makes a new line; focus stays in it -------------------------
  var lastTyping = 0;
  function enhanceComposer() {
    var box = $("field-body");
    if (!box || box.dataset.enhanced) return;
    box.dataset.enhanced = "1";
    box.setAttribute("enterkeyhint", "send");
    if ($("composer-hint")) {
      box.setAttribute("aria-describedby", ((box.getAttribute("aria-describedby") || "") + " composer-hint").trim());
    }
  }
  enhanceComposer();
  d.addEventListener("keydown", function (evt) {
    var box = evt.target;
    if (box.id !== "field-body" || evt.key !== "Enter" || evt.shiftKey || evt.isComposing) return;
    evt.preventDefault();
    if (box.form && box.value.trim()) box.form.requestSubmit();
  });
  d.addEventListener("input", function (evt) {
    var box = evt.target;
    if (box.id !== "field-body" || !box.dataset.typingUrl) return;
    var now = Date.now();
    if (now - lastTyping < 3000 || !box.value.trim()) return;
    lastTyping = now;
    fetch(box.dataset.typingUrl, { method: "POST", headers: { "X-CSRFToken": csrf }, credentials: "same-origin" })
      .catch(function () { /* typing is best effort */ });
  });
  d.addEventListener("htmx:after:swap", function (evt) {
    var ctx = evt.detail && evt.detail.ctx;
    if (!ctx || !ctx.sourceElement || ctx.sourceElement.id !== "composer") return;
    enhanceComposer();
    var box = $("field-body");
    if (box) box.focus();
    lastTyping = 0;
    if (state === "fallback") setTimeout(poll, 300);
  });

  // -- typing: others' signals from the stream, expiring -------------------------------------------------
  var typists = {};
  function renderTyping() {
    if (!typingBox) return;
    var names = Object.keys(typists).map(function (k) { return typists[k].alias; });
    typingBox.textContent = names.length === 0 ? "" : names.length === 1 ? names[0] + " is typing…" :
      names.slice(0, -1).join(", ") + " and " + names[names.length - 1] + " are typing…";
  }
  d.addEventListener("typing", function (evt) {
    var data;
    try { data = JSON.parse(evt.detail.data); } catch (e) { return; }
    if (String(data.member) === me) return;
    if (typists[data.member]) clearTimeout(typists[data.member].timer);
    typists[data.member] = { alias: data.alias, timer: setTimeout(function () {
      delete typists[data.member];
      renderTyping();
    }, (data.ttl || 6) * 1000) };
    renderTyping();
  });

  // -- the connection: live, reconnecting, or polling behind a proxy that will not pass the stream ---------
  var slot = $("live"), status = $("connection");
  var state = "";
  if (!slot || !status || !window.fetch || !window.ReadableStream) return;
  var cfg = slot.dataset;
  function ms(value, fallback) { var n = parseInt(value, 10); return n > 0 ? n : fallback; }
  var STALL = ms(cfg.stallMs, 10000), POLL = ms(cfg.pollMs, 5000), RETRY = ms(cfg.retryMs, 30000);
  var SILENT = Math.max(STALL, 2.5 * ms(cfg.heartbeatMs, 15000)); // a live stream this quiet has stalled
  var TEXT = {
    connecting: "Connecting…",
    live: "Live: new messages appear as they are posted.",
    reconnecting: "Connection lost. Reconnecting…",
    fallback: "Live updates cannot get through this network. Checking for new messages every " +
      Math.round(POLL / 1000) + " seconds.",
    gone: "Not connected: reload the page to join again."
  };
  var streamUrl = new URL(slot.getAttribute("hx-sse:connect"), location.href);
  var newerUrl = new URL(cfg.newerUrl, location.href);
  var home = slot.parentNode;
  var page = { seq: ms(cfg.after, 0), rev: ms(cfg.rev, 0) }, fromStream = null, fromPoll = null;
  var connection = null, generation = 0, lastBytes = 0, watchdog = 0, retryTimer = 0, retryDelay = RETRY;
  var pollTimer = 0, polling = false;

  function setState(next, text) {
    state = next;
    status.dataset.state = next;
    if (status.textContent !== text) status.textContent = text;
  }
  function parseCursor(id) {
    var m = /^(\d+)(?:\.(\d+))?$/.exec(id || "");
    return m ? { seq: +m[1], rev: m[2] ? +m[2] : null } : null;
  }
  // Where to resume: past every message any source delivered; changes from the oldest point either vouches
  // for (a change sent twice is swapped in twice, harmlessly; one skipped would be wrong).
  function cursor() {
    var seq = page.seq, revs = [];
    [fromStream, fromPoll].forEach(function (c) {
      if (!c) return;
      seq = Math.max(seq, c.seq);
      if (c.rev !== null) revs.push(c.rev);
    });
    return { seq: seq, rev: revs.length ? Math.min.apply(null, revs) : page.rev };
  }

  // The fetch wrapper: bytes on the current stream prove it is getting through.
  var nativeFetch = window.fetch.bind(window);
  window.fetch = function (input, init) {
    var request = nativeFetch(input, init);
    var url = typeof input === "string" || input instanceof URL ? String(input) : input && input.url;
    if (!url || new URL(url, location.href).pathname !== streamUrl.pathname) return request;
    var mine = generation;
    return request.then(function (res) { return watch(res, mine); });
  };
  function watch(res, mine) {
    var type = res.headers.get("Content-Type") || "";
    if (!res.ok || !res.body || type.indexOf("text/event-stream") < 0) return res;
    var reader = res.body.getReader();
    var body = new ReadableStream({
      pull: function (controller) {
        return reader.read().then(function (chunk) {
          if (chunk.done) { controller.close(); return; }
          gotBytes(mine);
          controller.enqueue(chunk.value);
        });
      },
      cancel: function (reason) { return reader.cancel(reason); }
    });
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  }
  function gotBytes(mine) {
    if (mine !== generation || state === "closed") return;
    lastBytes = Date.now();
    if (state === "live") return;
    clearTimeout(watchdog);
    watchdog = 0;
    clearTimeout(retryTimer);
    retryDelay = RETRY;
    stopPolling();
    quiet(1000);
    setState("live", TEXT.live);
  }
  function arm() {
    if (!watchdog) watchdog = setTimeout(function () { watchdog = 0; fallback(); }, STALL);
  }
  setInterval(function () {
    if (state === "live" && Date.now() - lastBytes > SILENT) {
      setState("reconnecting", TEXT.reconnecting);
      startStream();
    }
  }, 2000);

  function fallback() {
    if (state === "closed") return;
    stopStream();
    setState("fallback", TEXT.fallback);
    startPolling();
    clearTimeout(retryTimer);
    retryTimer = setTimeout(startStream, retryDelay);
    retryDelay = Math.min(retryDelay * 2, RETRY * 8);
  }
  function close(text) {
    clearTimeout(watchdog);
    watchdog = 0;
    clearTimeout(retryTimer);
    stopPolling();
    stopStream();
    setState("closed", text);
  }

  // A fresh #live element is a fresh stream (the extension offers no other way to restart one).
  function startStream() {
    stopStream();
    generation++;
    var c = cursor();
    streamUrl.searchParams.set("after", c.seq);
    streamUrl.searchParams.set("rev", c.rev);
    var el = d.createElement("div");
    el.id = "live";
    el.hidden = true;
    el.setAttribute("hx-sse:connect", streamUrl.pathname + streamUrl.search);
    el.setAttribute("hx-sse:close", "close");
    el.setAttribute("hx-target", "#log");
    el.setAttribute("hx-swap", "beforeend");
    home.insertBefore(el, typingBox && typingBox.parentNode === home ? typingBox : null);
    slot = el;
    arm();
    htmx.process(el);
  }
  function stopStream() {
    var el = slot, conn = connection;
    slot = null;
    connection = null;
    if (conn) {
      var c = parseCursor(conn.lastEventId);
      if (c) fromStream = c;
    }
    if (el && el.isConnected) {
      htmx.trigger(el, "htmx:abort"); // a request still waiting for its headers
      el.remove();
    }
    if (!conn) return;
    if (conn.delayCanceller) conn.delayCanceller();
    try { if (conn.reader) conn.reader.cancel(); } catch (e) { /* already released */ }
    try { if (conn.abortController) conn.abortController.abort(); } catch (e) { /* already aborted */ }
  }
  function ours(evt) { return slot !== null && evt.target === slot; }

  d.addEventListener("htmx:sse:before:connection", function (evt) {
    if (!ours(evt)) return;
    connection = evt.detail.connection;
    if (connection.attempt > 0) {
      if (state === "live") setState("reconnecting", TEXT.reconnecting);
      arm();
    }
  });
  d.addEventListener("htmx:sse:after:connection", function (evt) {
    if (ours(evt)) connection = evt.detail.connection;
  });
  d.addEventListener("htmx:sse:error", function (evt) {
    if (!ours(evt)) return;
    var code = evt.detail && evt.detail.status;
    if (code === 401 || code === 403 || code === 404) { close(TEXT.gone); return; }
    if (state === "live") setState("reconnecting", TEXT.reconnecting);
    arm();
  });
  // The first request of a stream is an ordinary htmx request: an error page must not land in the log.
  d.addEventListener("htmx:before:response", function (evt) {
    var ctx = evt.detail.ctx;
    if (!ctx || ctx.sourceElement !== slot || !slot) return;
    evt.preventDefault();
    var code = ctx.response.status;
    if (code === 401 || code === 403 || code === 404) close(TEXT.gone);
    else fallback();
  });
  d.addEventListener("htmx:error", function (evt) {
    var ctx = evt.detail.ctx;
    if (ctx && slot && ctx.sourceElement === slot && state !== "live") fallback();
  });
  // The server ends a stream with a named "close" event: the room ended, or the host removed this reader.
  d.addEventListener("close", function (evt) {
    if (!ours(evt)) return;
    var why = evt.detail && evt.detail.data;
    close(why === "ended" ? "Not connected: this room has ended." :
      why === "removed" ? "Not connected: the host removed you from this room." : TEXT.gone);
  });
  d.addEventListener("htmx:sse:before:message", function (evt) {
    if (!ours(evt)) return;
    var message = evt.detail.message;
    var c = parseCursor(message.id);
    if (c) fromStream = c;
    if (!message.event && message.data && message.data.indexOf('id="message-') >= 0) message.data = dedupe(message.data);
  });
  // New messages already on the page are dropped; out-of-band ones (edits, removals) are swapped as usual.
  function dedupe(html) {
    var tpl = d.createElement("template"), dropped = false;
    tpl.innerHTML = html;
    each(tpl.content.children, function (el) {
      if (el.classList.contains("message") && !el.hasAttribute("hx-swap-oob") && el.id && $(el.id)) {
        el.remove();
        dropped = true;
      }
    });
    return dropped ? tpl.innerHTML : html;
  }

  // -- polling, while the stream cannot get through -----------------------------------------------------
  function startPolling() {
    if (pollTimer) return;
    pollTimer = setInterval(poll, POLL);
    poll();
  }
  function stopPolling() {
    clearInterval(pollTimer);
    pollTimer = 0;
  }
  function poll() {
    if (polling || state === "closed") return;
    polling = true;
    var c = cursor();
    newerUrl.searchParams.set("after", c.seq);
    newerUrl.searchParams.set("rev", c.rev);
    nativeFetch(newerUrl.href, { headers: { "HX-Request": "true" }, credentials: "same-origin", cache: "no-store" })
      .then(function (res) {
        if (res.status === 401 || res.status === 403 || res.status === 404) { close(TEXT.gone); return; }
        if (!res.ok) return;
        var next = parseCursor(res.headers.get("Chatroom-Cursor"));
        var roomStatus = res.headers.get("Chatroom-Room-Status");
        return res.text().then(function (html) {
          apply(html);
          if (next) fromPoll = next;
          if (roomStatus === "ended") close("Not connected: this room has ended.");
        });
      })
      .catch(function () { /* offline for a moment: the next poll tries again */ })
      .then(function () { polling = false; });
  }
  // The same rules as the stream: new messages appended unless present; out-of-band elements replace theirs.
  function apply(html) {
    var tpl = d.createElement("template"), fresh = [];
    tpl.innerHTML = html;
    each(tpl.content.children, function (el) {
      var old = el.id ? $(el.id) : null;
      if (el.hasAttribute("hx-swap-oob")) {
        el.removeAttribute("hx-swap-oob");
        if (old) old.replaceWith(el);
      } else if (el.classList.contains("message") && !old) {
        fresh.push(el);
      }
    });
    if (fresh.length > 1) quiet(400);
    fresh.forEach(function (el) { log.appendChild(el); });
  }

  setState("connecting", TEXT.connecting);
  arm();
})();
