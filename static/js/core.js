// The room page's scripts: one small file per behaviour, joined into one bundle (chatroom/assets.py), each
// optional (the page works without any). They find their elements by id and talk through DOM events:
//   chatroom:arrived {count, mine}  new messages landed in the log (log.js)
//   chatroom:quiet {ms}             a burst is about to land: tell it as a count (live.js, to announce.js)
//   chatroom:announce {text}        say this once, politely (to announce.js)
//   chatroom:people {text}          who joined and left, batched (presence.js, to announce.js)
//   chatroom:load {src}             load a script bundle that is needed only now (once per src; here)
(() => {
  "use strict";
  document.documentElement.classList.add("js");
  // htmx requests carry the CSRF token in a header, so fragments need no token of their own.
  const token = document.querySelector('meta[name="csrf-token"]');
  document.addEventListener("htmx:config:request", (evt) => {
    evt.detail.ctx.request.headers["X-CSRFToken"] = token ? token.content : "";
  });
  // Bundles that the first load does without (docs/front-end.md: its weight budget), each loaded once.
  const loaded = new Set();
  document.addEventListener("chatroom:load", (evt) => {
    const src = evt.detail.src;
    if (!src || loaded.has(src)) return;
    loaded.add(src);
    document.head.append(Object.assign(document.createElement("script"), { src }));
  });
  // The theme switch without a page load (theme.js) comes with the first switch where a page's bundle lacks it:
  // the choice waits on the form (data-pending) for theme.js, which applies it when it runs.
  document.addEventListener("submit", (evt) => {
    const form = evt.target, choice = evt.submitter && evt.submitter.value;
    if (!form.classList.contains("theme-switch") || form.dataset.ready || !choice || !form.dataset.src) return;
    evt.preventDefault();
    form.dataset.pending = choice;
    document.dispatchEvent(new CustomEvent("chatroom:load", { detail: { src: form.dataset.src } }));
  });
})();
