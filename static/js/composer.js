// The message box (#field-body): Enter sends, Shift+Enter starts a new line; typing tells the others (POST to
// its data-typing-url, at most every 3 s). After a send htmx morphs the fresh #composer into the page, so the
// box (and the focus in it) stays; a message that went through is cleared from it here (a morph keeps input).
(() => {
  "use strict";
  const d = document, token = d.querySelector('meta[name="csrf-token"]');
  let lastTyping = 0;
  function enhance() {
    const box = d.getElementById("field-body");
    if (!box || box.dataset.enhanced) return;
    box.dataset.enhanced = "1";
    box.setAttribute("enterkeyhint", "send");
    if (d.getElementById("composer-hint")) {
      box.setAttribute("aria-describedby", ((box.getAttribute("aria-describedby") || "") + " composer-hint").trim());
    }
  }
  enhance();
  d.addEventListener("keydown", (evt) => {
    const box = evt.target;
    if (box.id !== "field-body" || evt.key !== "Enter" || evt.shiftKey || evt.isComposing) return;
    evt.preventDefault();
    if (box.form && box.value.trim()) box.form.requestSubmit();
  });
  d.addEventListener("input", (evt) => {
    const box = evt.target, now = Date.now();
    if (box.id !== "field-body" || !box.dataset.typingUrl || now - lastTyping < 3000 || !box.value.trim()) return;
    lastTyping = now;
    fetch(box.dataset.typingUrl, { method: "POST", headers: { "X-CSRFToken": token ? token.content : "" }, credentials: "same-origin" })
      .catch(() => { /* typing is best effort */ });
  });
  let sent = "";
  d.addEventListener("htmx:before:request", (evt) => {
    const ctx = evt.detail && evt.detail.ctx, box = d.getElementById("field-body");
    if (ctx && ctx.sourceElement && ctx.sourceElement.id === "composer" && box) sent = box.value;
  });
  d.addEventListener("htmx:after:swap", (evt) => {
    const ctx = evt.detail && evt.detail.ctx;
    if (!ctx || !ctx.sourceElement || ctx.sourceElement.id !== "composer") return;
    enhance();
    const box = d.getElementById("field-body"), res = ctx.response;
    if (box && res && res.status < 300 && box.value === sent) box.value = ""; // not what was typed since
    if (box && d.activeElement !== box) box.focus(); // after a click on Send
    lastTyping = 0;
  });
})();
