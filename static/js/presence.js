// Presence that is true, from the page's side, and joins and leaves as quiet notices in the log.
//   - When the page goes away (pagehide: the tab closes, or the reader navigates), a beacon tells the server
//     (POST state=gone to #live's data-presence-url with this tab's id, <body data-tab> from live.js): it leaves
//     "Here now" at once, instead of when the server next writes to a socket that is gone.
//   - The Page Visibility API: a hidden tab is "away", shown again it is online.
//   - Each new "Here now" list (#presence, swapped in by the stream or a poll) is compared with the last one;
//     who joined and who left is written into the log as one notice (li.log-notice), batched over a moment
//     (a class arriving is one line, not sixty) and after a short grace (a reload is not a leave and a join).
//     Above PRESENCE_LIST_MAX people the list is only a count, and nobody is named.
//     announce.js says it (chatroom:people); it is not a message: never counted, never stored, not in the transcript.
//   - When the stream closes for good (chatroom:closed), the list says this reader is not connected, and the
//     page stops reporting its visibility (the seat or the sign-in is gone: the server would refuse it).
(() => {
  "use strict";
  const d = document, live = d.getElementById("live"), log = d.getElementById("log"), me = d.body.dataset.member;
  const url = live && live.dataset.presenceUrl, token = d.querySelector('meta[name="csrf-token"]');
  if (!url || !log) return;
  let closed = false; // the stream closed for good (chatroom:closed): no seat to report on, no list to follow
  d.addEventListener("chatroom:closed", () => { closed = true; });
  function send(state, beacon) {
    const tab = d.body.dataset.tab;
    if (!tab || closed) return;
    const body = new FormData();
    body.append("csrf_token", token ? token.content : "");
    body.append("tab", tab);
    body.append("state", state);
    if (beacon && navigator.sendBeacon && navigator.sendBeacon(url, body)) return;
    fetch(url, { method: "POST", body, credentials: "same-origin", keepalive: true }).catch(() => { /* best effort */ });
  }
  window.addEventListener("pagehide", () => send("gone", true));
  window.addEventListener("pageshow", (evt) => { if (evt.persisted) location.reload(); }); // its stream was ended
  d.addEventListener("visibilitychange", () => send(d.visibilityState === "hidden" ? "away" : "online", false));
  if (d.visibilityState === "hidden") send("away", false);

  // -- notices -------------------------------------------------------------------------------------------------
  const list = d.getElementById("presence"), aside = list && list.parentNode;
  if (!aside) return;
  const pane = log.closest('[role="log"]') || log;
  let timer = 0;
  const joined = new Map(), left = new Map();
  function here() {
    const people = new Map();
    d.querySelectorAll('#presence [data-member]:not([data-state="offline"])').forEach((li) => {
      people.set(li.dataset.member, (li.firstChild && li.firstChild.textContent || "").trim());
    });
    return people;
  }
  // A big room's list is a count (#presence[data-count], chat/_presence.html): no names, so nobody to tell of;
  // going from names to a count or back is not everyone leaving or arriving.
  const counted = () => !!d.querySelector("#presence[data-count]");
  let known = here(), wasCounted = counted();
  function names(list) {
    if (list.length <= 3) return list.length === 1 ? list[0] : list.slice(0, -1).join(", ") + " and " + list[list.length - 1];
    return list.slice(0, 2).join(", ") + " and " + (list.length - 2) + " others";
  }
  function flush() {
    timer = 0;
    const parts = [];
    if (joined.size) parts.push(names([...joined.values()]) + " joined");
    if (left.size) parts.push(names([...left.values()]) + " left");
    joined.clear();
    left.clear();
    if (!parts.length || closed) return;
    const atEnd = pane.scrollHeight - pane.scrollTop - pane.clientHeight < 48;
    const li = d.createElement("li");
    li.className = "log-notice";
    li.textContent = parts.join(". ") + ".";
    log.appendChild(li);
    d.dispatchEvent(new CustomEvent("chatroom:people", { detail: { text: li.textContent } })); // said by announce.js
    if (atEnd) pane.scrollTop = pane.scrollHeight;
  }
  new MutationObserver(() => {
    if (closed || !d.getElementById("presence")) return;
    const now = here(), isCounted = counted(), skip = isCounted || wasCounted;
    wasCounted = isCounted;
    if (skip) { known = now; return; }
    now.forEach((alias, id) => {
      if (known.has(id) || id === me) return;
      if (left.has(id)) left.delete(id); else joined.set(id, alias);
    });
    known.forEach((alias, id) => {
      if (now.has(id) || id === me) return;
      if (joined.has(id)) joined.delete(id); else left.set(id, alias);
    });
    known = now;
    clearTimeout(timer);
    timer = setTimeout(flush, 2500);
  }).observe(aside, { childList: true });
  d.addEventListener("chatroom:closed", () => {
    const current = d.getElementById("presence");
    if (current) current.innerHTML = '<li class="hint">You are not connected to this room.</li>';
    d.querySelectorAll('form[action$="/leave"]').forEach((form) => { form.hidden = true; });
  });
})();
