// Enhancements for the room page. Everything here is optional: the page works without it.
(function () {
  "use strict";
  var body = document.body;
  var me = body.dataset.member;
  var csrf = document.querySelector('meta[name="csrf-token"]').content;

  // htmx requests carry the CSRF token in a header, so fragments need no token of their own.
  document.addEventListener("htmx:config:request", function (evt) {
    evt.detail.ctx.request.headers["X-CSRFToken"] = csrf;
  });

  function log() { return document.getElementById("log"); }
  function atBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < 40; }

  // Keep the newest message in view, but only when the reader was already at the bottom.
  var stick = true;
  document.addEventListener("htmx:before:swap", function () { var l = log(); if (l) stick = atBottom(l); });
  document.addEventListener("htmx:after:swap", function () { var l = log(); if (l && stick) l.scrollTop = l.scrollHeight; });
  window.addEventListener("DOMContentLoaded", function () { var l = log(); if (l) l.scrollTop = l.scrollHeight; });

  // Connection state, shown and announced.
  function setState(state, text) {
    var el = document.getElementById("connection");
    if (!el || el.dataset.state === state) return;
    el.dataset.state = state;
    el.textContent = text;
  }
  document.addEventListener("htmx:sse:after:connection", function () { setState("live", "Live"); });
  document.addEventListener("htmx:sse:error", function (evt) {
    var status = evt.detail && evt.detail.status;
    if (status === 401 || status === 403 || status === 404) {
      var live = document.getElementById("live");
      if (live) live.remove();  // removing the element ends the connection: no futile retries
      setState("closed", "Not connected: reload the page to join again.");
      return;
    }
    setState("reconnecting", "Reconnecting…");
  });
  document.addEventListener("htmx:sse:close", function (evt) {
    if (evt.detail && evt.detail.reason === "message") setState("closed", "Not connected.");
  });

  // Typing: others' signals from the stream, expiring; ours sent at most every 3 s.
  var typists = {};
  function renderTyping() {
    var el = document.getElementById("typing");
    if (!el) return;
    var names = Object.keys(typists).map(function (k) { return typists[k].alias; });
    el.textContent = names.length === 0 ? "" : names.length === 1 ? names[0] + " is typing…" :
      names.slice(0, -1).join(", ") + " and " + names[names.length - 1] + " are typing…";
  }
  document.addEventListener("typing", function (evt) {
    var data;
    try { data = JSON.parse(evt.detail.data); } catch (e) { return; }
    if (String(data.member) === me) return;
    if (typists[data.member]) clearTimeout(typists[data.member].timer);
    typists[data.member] = { alias: data.alias, timer: setTimeout(function () {
      delete typists[data.member]; renderTyping();
    }, (data.ttl || 6) * 1000) };
    renderTyping();
  });
  var lastTyping = 0;
  document.addEventListener("input", function (evt) {
    var box = evt.target;
    if (box.id !== "field-body" || !box.dataset.typingUrl) return;
    var now = Date.now();
    if (now - lastTyping < 3000 || !box.value.trim()) return;
    lastTyping = now;
    fetch(box.dataset.typingUrl, { method: "POST", headers: { "X-CSRFToken": csrf }, credentials: "same-origin" });
  });

  // Enter sends, Shift+Enter makes a new line.
  document.addEventListener("keydown", function (evt) {
    var box = evt.target;
    if (box.id !== "field-body" || evt.key !== "Enter" || evt.shiftKey || evt.isComposing) return;
    evt.preventDefault();
    box.form.requestSubmit();
  });
  // A fresh composer arrives after each post: keep the focus in it.
  document.addEventListener("htmx:after:swap", function (evt) {
    var box = document.getElementById("field-body");
    if (box && evt.detail && evt.detail.ctx && evt.detail.ctx.sourceElement &&
        evt.detail.ctx.sourceElement.id === "composer") { box.focus(); lastTyping = 0; }
  });
})();
