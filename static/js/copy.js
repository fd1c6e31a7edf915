// Copy buttons: a <button data-copy="#id"> copies that element's value or text, and says what it did
// (chatroom:announce, or its own data-copied text where no announcer listens). Hidden without JavaScript
// (class js-only). The room's messages copy from their menu (menu.js); this is for pages that need a
// button of their own, such as a share link.
(() => {
  "use strict";
  const d = document;
  d.addEventListener("click", (evt) => {
    const button = evt.target.closest ? evt.target.closest("button[data-copy]") : null;
    const source = button && d.querySelector(button.dataset.copy);
    if (!source || !(navigator.clipboard && navigator.clipboard.writeText)) return;
    const say = (text, alert) => d.dispatchEvent(new CustomEvent("chatroom:announce", { detail: { text, alert } }));
    navigator.clipboard.writeText("value" in source ? source.value : source.textContent.trim()).then(() => {
      const label = button.textContent;
      button.textContent = button.dataset.copied || "Copied";
      say(button.dataset.copied || "Copied.");
      setTimeout(() => { button.textContent = label; }, 1500);
    }, () => say("Could not copy. Select the text and copy it instead.", true));
  });
})();
