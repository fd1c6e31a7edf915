// The room page's scripts: one small file per behaviour, joined into one bundle (chatroom/assets.py), each
// optional (the page works without any). They find their elements by id and talk through DOM events:
//   chatroom:arrived {count, mine}  new messages landed in the log (log.js)
//   chatroom:quiet {ms}             a burst is about to land: tell it as a count (live.js, to announce.js)
//   chatroom:announce {text}        say this once, politely (to announce.js)
(() => {
  "use strict";
  document.documentElement.classList.add("js");
  // htmx requests carry the CSRF token in a header, so fragments need no token of their own.
  const token = document.querySelector('meta[name="csrf-token"]');
  document.addEventListener("htmx:config:request", (evt) => {
    evt.detail.ctx.request.headers["X-CSRFToken"] = token ? token.content : "";
  });
})();
