// The message log (#log, inside the scrolling role="log" pane). New messages are followed only from the
// bottom, otherwise counted on #jump, which takes the reader there; each arrival is told to the other
// scripts (chatroom:arrived). Older messages load at the top (scrolling there, or #older-link) and the
// view stays put. Consecutive messages from one person within 5 minutes are grouped (message--cont: the
// server marks those it renders together; this marks those that arrive later). The page's height follows
// the visual viewport (--vvh), so a phone's keyboard never covers the message box.
(() => {
  "use strict";
  const d = document, log = d.getElementById("log");
  if (!log) return;
  const pane = log.closest('[role="log"]') || log, jump = d.getElementById("jump"), me = d.body.dataset.member;
  // The message menu (menu.js, data-menu-src) loads when a message's options link is first hovered, focused or
  // clicked; a click before it is here opens the menu once it is (its link to the message's page waits).
  const wake = (evt) => {
    const more = evt.target.closest && evt.target.closest(".message__more");
    if (!more || log.dataset.menu === "ready" || log.dataset.menu === "failed" || !log.dataset.menuSrc) return;
    if (evt.type === "click") { evt.preventDefault(); log.dataset.menuFor = more.closest(".message").id; }
    d.dispatchEvent(new CustomEvent("chatroom:load", { detail: { src: log.dataset.menuSrc } }));
  };
  ["pointerover", "focusin", "click"].forEach((type) => log.addEventListener(type, wake));
  const reduce = window.matchMedia ? matchMedia("(prefers-reduced-motion: reduce)") : { matches: true };
  let stick = true, unseen = 0;
  const atBottom = () => pane.scrollHeight - pane.scrollTop - pane.clientHeight < 48;
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
  if (jump) jump.addEventListener("click", () => {
    toBottom(true);
    stick = true;
    seen();
    pane.focus({ preventScroll: true });
  });
  pane.addEventListener("scroll", () => {
    stick = atBottom();
    if (stick) seen();
    if (pane.scrollTop < 64) older();
  }, { passive: true });
  window.addEventListener("resize", () => { if (stick) toBottom(false); });
  const target = location.hash.length > 1 ? d.getElementById(decodeURIComponent(location.hash.slice(1))) : null;
  if (target && pane.contains(target)) target.scrollIntoView({ block: "center" });
  else toBottom(false);
  stick = atBottom();

  const vv = window.visualViewport;
  if (vv) {
    const fit = () => d.documentElement.style.setProperty("--vvh", vv.height + "px");
    vv.addEventListener("resize", fit);
    fit();
  }
  const at = (li) => { const t = li && li.querySelector("time"); return t ? Date.parse(t.getAttribute("datetime")) : 0; };
  function group(li) {
    if (!li || !li.classList || !li.classList.contains("message")) return;
    const prev = li.previousElementSibling;
    li.classList.toggle("message--cont", !!prev && prev.dataset.author === li.dataset.author && at(li) - at(prev) < 300000);
  }

  // New messages: those past the highest seq seen (an edit replacing one is not new).
  let maxSeq = 0;
  log.querySelectorAll(".message").forEach((li) => { maxSeq = Math.max(maxSeq, +li.dataset.seq || 0); });
  new MutationObserver((records) => {
    let count = 0, mine = false;
    records.forEach((record) => record.addedNodes.forEach((node) => {
      if (node.nodeType !== 1 || !node.classList.contains("message")) return;
      group(node);
      group(node.nextElementSibling);
      if (!(+node.dataset.seq > maxSeq)) return;
      maxSeq = +node.dataset.seq;
      count++;
      if (node.dataset.author === me) mine = true;
    }));
    if (!count) return;
    log.dispatchEvent(new CustomEvent("chatroom:arrived", { bubbles: true, detail: { count, mine } }));
    arrived(count, mine);
  }).observe(log, { childList: true });

  // Older messages (htmx re-points ctx.sourceElement once the link is swapped out: the request is its ctx).
  let request = null, keep = null;
  function older() {
    const link = d.getElementById("older-link");
    if (link && !request) link.click();
  }
  d.addEventListener("htmx:before:request", (evt) => {
    const ctx = evt.detail.ctx;
    if (ctx && ctx.sourceElement && ctx.sourceElement.id === "older-link") request = ctx;
  });
  d.addEventListener("htmx:before:swap", (evt) => {
    if (evt.detail.ctx !== request || keep) return;
    keep = { height: pane.scrollHeight, top: pane.scrollTop, focused: d.activeElement === d.getElementById("older-link") };
  });
  d.addEventListener("htmx:after:swap", (evt) => {
    if (!keep || evt.detail.ctx !== request) return;
    pane.scrollTop = keep.top + (pane.scrollHeight - keep.height);
    const next = d.getElementById("older-link") || d.getElementById("older-start");
    if (keep.focused && next) next.focus();
    keep = null;
  });
  d.addEventListener("htmx:finally:request", (evt) => {
    if (evt.detail.ctx === request) request = keep = null;
  });
})();
