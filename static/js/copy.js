// A copy button on each message with text (added here, so pages without JavaScript show none); it says what it did.
(() => {
  "use strict";
  const d = document, log = d.getElementById("log");
  if (!log || !(navigator.clipboard && navigator.clipboard.writeText)) return;
  const say = (text) => d.dispatchEvent(new CustomEvent("chatroom:announce", { detail: { text } }));
  function add(li) {
    if (li.querySelector(".copy") || !li.querySelector(".message__body:not(.message__body--removed)")) return;
    const alias = li.querySelector(".message__alias"), button = d.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy message" + (alias ? " from " + alias.textContent : ""));
    (li.querySelector(".message__meta") || li).appendChild(button);
  }
  log.querySelectorAll(".message").forEach(add);
  // Every message that lands (new, older, or an edit replacing one) before the log scrolls to it (log.js).
  new MutationObserver((records) => records.forEach((record) => record.addedNodes.forEach((node) => {
    if (node.nodeType === 1 && node.classList.contains("message")) add(node);
  }))).observe(log, { childList: true });
  log.addEventListener("click", (evt) => {
    const button = evt.target.closest ? evt.target.closest(".copy") : null;
    if (!button) return;
    const text = button.closest(".message").querySelector(".message__body");
    navigator.clipboard.writeText(text ? text.textContent : "").then(() => {
      const label = button.getAttribute("aria-label");
      button.textContent = "Copied";
      button.setAttribute("aria-label", "Copied");
      say("Message copied.");
      setTimeout(() => { button.textContent = "Copy"; button.setAttribute("aria-label", label); }, 1500);
    }, () => say("Could not copy. Select the text and copy it instead."));
  });
})();
