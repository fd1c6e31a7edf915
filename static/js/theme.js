// The theme switch (form.theme-switch) without a page load; without JavaScript the form posts and comes back.
// In the room's bundles it is left out and loaded on the first switch (core.js).
(() => {
  "use strict";
  const d = document, root = d.documentElement, token = d.querySelector('meta[name="csrf-token"]');
  const forms = d.querySelectorAll("form.theme-switch");
  if (!forms.length || forms[0].dataset.ready) return; // in two bundles of one page: once
  forms.forEach((form) => { form.dataset.ready = "1"; });
  d.addEventListener("submit", (evt) => {
    const form = evt.target, choice = evt.submitter && evt.submitter.value;
    if (!form.classList.contains("theme-switch") || !choice) return;
    evt.preventDefault();
    apply(form, choice);
  });
  forms.forEach((form) => { // a choice made before this file was here (core.js)
    const choice = form.dataset.pending;
    delete form.dataset.pending;
    if (choice) apply(form, choice);
  });
  function apply(form, choice) {
    const body = new URLSearchParams({ theme: choice, csrf_token: token ? token.content : "" });
    fetch(form.action, { method: "POST", body, headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then((res) => {
        if (!res.ok) throw new Error(res.status);
        if (choice === "system") delete root.dataset.theme; else root.dataset.theme = choice;
        const scheme = d.querySelector('meta[name="color-scheme"]');
        if (scheme) scheme.content = choice === "system" ? "light dark" : choice;
        form.querySelectorAll("button[name=theme]").forEach((b) => b.setAttribute("aria-pressed", String(b.value === choice)));
      })
      .catch(() => {
        const input = d.createElement("input");
        input.type = "hidden"; input.name = "theme"; input.value = choice;
        form.appendChild(input);
        form.submit();
      });
  }
})();
