// How far this tab read: sent when hidden (data-seen-url), kept in data-mark while away; loads the
// participation.js bundle (data-src) only when needed (docs/front-end.md).
(() => {
  "use strict";
  const d = document, log = d.getElementById("log"), t = d.getElementById("room-tools");
  if (!log || !t) return;
  const max = () => Math.max(0, ...[...log.querySelectorAll(".message")].map((li) => +li.dataset.seq));
  function load() {
    t.dataset.loaded = "1";
    d.dispatchEvent(new CustomEvent("chatroom:load", { detail: { src: t.dataset.src } }));
  }
  const away = () => { t.dataset.mark = +t.dataset.mark || max() || ""; };
  function seen() {
    const form = new FormData();
    form.append("csrf_token", d.querySelector("meta[name=csrf-token]").content);
    form.append("seq", max());
    navigator.sendBeacon(t.dataset.seenUrl, form);
  }
  d.addEventListener("visibilitychange", () => {
    if (d.hidden) { away(); seen(); } else if (max() > +t.dataset.mark) load(); else t.dataset.mark = "";
  });
  addEventListener("pagehide", seen);
  d.addEventListener("chatroom:quiet", (e) => { // a (re)connected stream's catch-up (live.js), not a poll's 400 ms
    if (e.detail.ms < 1000) return;
    away();
    setTimeout(() => { if (!d.hidden && !t.dataset.pending) t.dataset.mark = ""; }, 3000);
  });
  new MutationObserver((records) => {
    const added = records.flatMap((r) => [...r.addedNodes]).filter((n) => n.nodeType === 1 && n.dataset.seq);
    if (t.dataset.loaded || !added.some((n) => n.querySelector("[data-by],.mention") || (+t.dataset.mark && n.dataset.seq > +t.dataset.mark))) return;
    load();
  }).observe(log, { childList: true });
  d.addEventListener("input", (e) => { if (e.target.id === "field-body" && e.target.value.includes("@")) load(); });
})();
