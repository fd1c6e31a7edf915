// The side panel ("Here now", the host's tools): a disclosure on narrow screens (#side-toggle), closed by
// Escape or its Close button, the focus back on the toggle.
(() => {
  "use strict";
  const d = document, toggle = d.getElementById("side-toggle"), room = toggle && toggle.closest(".room");
  const panel = d.getElementById("room-side");
  if (!room || !panel) return;
  function side(open) {
    room.classList.toggle("side-open", open);
    toggle.setAttribute("aria-expanded", String(open));
    if (open) d.getElementById("presence-heading").focus();
  }
  toggle.addEventListener("click", () => side(toggle.getAttribute("aria-expanded") !== "true"));
  panel.addEventListener("keydown", (evt) => {
    if (evt.key === "Escape" && room.classList.contains("side-open")) { side(false); toggle.focus(); }
  });
  panel.addEventListener("click", (evt) => {
    if (evt.target.closest && evt.target.closest("[data-close-side]")) { side(false); toggle.focus(); }
  });
})();
