// The message menu: a bundle of its own, loaded on first use (core.js's chatroom:load, asked by log.js when a
// message's options link is first hovered, focused or clicked; that click opens the menu once it is here).
//
// Each message ends with an options link to its own page (chat.message: the way without JavaScript). Here it
// becomes a menu button (the ARIA menu button pattern: Enter, Space or a click opens it and focuses the first
// item; the arrow keys move, Home and End jump; Escape or Tab closes it and gives the focus back to the button). The menu is built from
// #menu-template (this viewer's actions, fetched from chat.menu) and shows those that apply to the message: edit and delete
// on one's own within 5 minutes, report on others', remove and the person's removal or ban for the host; a
// reaction (a toggle) for everyone while the room is open; marking a question, and answered, for the host.
// Once the room has ended or the page no longer follows it, only copying is left.
// Actions act in place: edit and report open a small form inside the message (fetched from chat.message with
// form=, posted with htmx); delete, remove, remove person and ban are POSTs whose result the stream shows.
// Each says what it did (chatroom:announce), or why it was refused (as an alert).
(() => {
  "use strict";
  const d = document, log = d.getElementById("log");
  const token = d.querySelector('meta[name="csrf-token"]'), me = d.body.dataset.member;
  const say = (text, alert) => d.dispatchEvent(new CustomEvent("chatroom:announce", { detail: { text, alert } }));
  const EDIT_MS = 5 * 60 * 1000;
  if (!log || log.dataset.menu || !log.dataset.menuUrl) return;
  // The room ended, or this page stopped following it (removed, left, signed out: chat/_notice.html; or the
  // polling fallback was refused): only copying still works, so only copying is offered.
  const shut = () => !!d.querySelector('#room-status .room-state[data-state="ended"], #room-status .room-state[data-state="closed"], #connection[data-state="closed"]');
  log.dataset.menu = "loading";
  // This viewer's actions come from the server (chat.menu: #menu-template), once; without them the options
  // links stay links to each message's page (log.js leaves them alone once data-menu says "failed").
  // Once the page is shut, an options link stays put and says why: its page would refuse (403), and leaving would
  // lose the text the message box kept. Until then it is the way to the message's page.
  const why = () => say("This page no longer follows the room, so its messages have no options now.", true);
  const failed = () => {
    log.dataset.menu = "failed";
    log.addEventListener("click", (evt) => {
      if (shut() && evt.target.closest && evt.target.closest(".message__more")) { evt.preventDefault(); why(); }
    });
    const asked = log.dataset.menuFor && d.querySelector("#" + log.dataset.menuFor + " .message__more");
    if (asked && shut()) why();
    else if (asked) location.href = asked.href;
  };
  fetch(log.dataset.menuUrl, { credentials: "same-origin", headers: { "HX-Request": "true" } })
    .then((res) => (res.ok ? res.text() : ""))
    .then((html) => {
      d.body.insertAdjacentHTML("beforeend", html);
      const template = d.getElementById("menu-template"), sheet = d.getElementById("menu-css");
      const go = () => { if (template) ready(template); else failed(); };
      if (sheet && !sheet.sheet) { sheet.addEventListener("load", go, { once: true }); sheet.addEventListener("error", go, { once: true }); }
      else go(); // the menu's stylesheet (menu.css) came with it: no menu opens unstyled
    }, failed);

  function ready(template) {
    log.dataset.menu = "ready";
    const pane = log.closest('[role="log"]') || log, frame = pane.parentNode;
    const text = (el, sel) => { const found = el && el.querySelector(sel); return found ? found.textContent.trim() : ""; };

    function upgrade(li) {
      const more = li.querySelector(".message__more");
      if (!more || more.getAttribute("role")) return;
      more.setAttribute("role", "button");
      more.setAttribute("aria-haspopup", "menu");
      more.setAttribute("aria-expanded", "false");
      more.setAttribute("aria-label", "Options for the message from " + text(li, ".message__alias"));
    }
    log.querySelectorAll(".message").forEach(upgrade);
    let pendingFocus = null; // a message whose button gets the focus back when the stream replaces it
    new MutationObserver((records) => records.forEach((r) => r.addedNodes.forEach((li) => {
      if (li.nodeType !== 1 || !li.classList.contains("message")) return;
      upgrade(li);
      if (pendingFocus === li.id) {
        pendingFocus = null;
        const more = li.querySelector(".message__more");
        (more || pane).focus({ preventScroll: true });
      }
    }))).observe(log, { childList: true });

    // -- the menu -----------------------------------------------------------------------------------------
    let menu = null, owner = null;
    const items = () => [...menu.querySelectorAll("[role=menuitem]")];
    function applies(button, li) {
      if (button.dataset.do !== "copy" && shut()) return false;
      const own = li.dataset.author === me, time = li.querySelector("time");
      const recent = time && Date.now() - Date.parse(time.getAttribute("datetime")) < EDIT_MS;
      if ("own" in button.dataset) return own && recent;
      if ("others" in button.dataset) return !own;
      if ("participant" in button.dataset) return !own && !li.classList.contains("message--host");
      if ("asked" in button.dataset) return !!li.querySelector(".question");
      return true;
    }
    function open(more) {
      close(false);
      const li = more.closest(".message");
      menu = template.content.firstElementChild.cloneNode(true);
      menu.id = "message-menu";
      menu.setAttribute("aria-label", more.getAttribute("aria-label"));
      menu.querySelectorAll("[data-alias]").forEach((span) => { span.textContent = text(li, ".message__alias"); });
      menu.querySelectorAll("[data-do=question], [data-do=answered]").forEach((b) => { // the host's: as it is now
        if (li.querySelector(b.dataset.do === "question" ? ".question" : ".badge--answered")) b.textContent = b.dataset.undo;
      });
      menu.querySelectorAll("[role=menuitem]").forEach((b) => { if (!applies(b, li)) b.remove(); });
      owner = more;
      more.setAttribute("aria-expanded", "true");
      more.setAttribute("aria-controls", "message-menu");
      frame.appendChild(menu);
      const box = more.getBoundingClientRect(), base = frame.getBoundingClientRect();
      const below = box.bottom - base.top + 4, fits = box.bottom + menu.offsetHeight + 8 < innerHeight;
      menu.style.top = (fits ? below : Math.max(0, box.top - base.top - menu.offsetHeight - 4)) + "px";
      menu.style.right = Math.max(4, base.right - box.right) + "px";
      items()[0].focus();
    }
    function close(refocus) {
      if (!menu) return;
      menu.remove();
      menu = null;
      owner.setAttribute("aria-expanded", "false");
      owner.removeAttribute("aria-controls");
      if (refocus && owner.isConnected) owner.focus();
    }
    log.addEventListener("click", (evt) => {
      const more = evt.target.closest ? evt.target.closest(".message__more") : null;
      if (!more) return;
      evt.preventDefault();
      if (menu && owner === more) close(true); else open(more);
    });
    log.addEventListener("keydown", (evt) => {
      if (evt.key === " " && evt.target.classList.contains("message__more")) { evt.preventDefault(); open(evt.target); }
    });
    frame.addEventListener("keydown", (evt) => {
      if (!menu || !menu.contains(evt.target)) return;
      const list = items(), at = list.indexOf(evt.target);
      // Down and Up through the items; Right and Left too (the reactions sit in a row, and there are no submenus).
      const go = { ArrowDown: at + 1, ArrowRight: at + 1, ArrowUp: at - 1, ArrowLeft: at - 1, Home: 0, End: list.length - 1 }[evt.key];
      if (go !== undefined) { evt.preventDefault(); list[(go + list.length) % list.length].focus(); }
      else if (evt.key === "Escape" || evt.key === "Tab") { evt.preventDefault(); close(true); }
    });
    d.addEventListener("click", (evt) => { if (menu && !menu.contains(evt.target) && !owner.contains(evt.target)) close(false); });
    pane.addEventListener("scroll", () => close(false), { passive: true });
    frame.addEventListener("click", (evt) => {
      const button = menu && evt.target.closest ? evt.target.closest("[role=menuitem]") : null;
      if (!button) return;
      const more = owner, li = more.closest(".message");
      close(false);
      act(button.dataset.do, li, more, button);
    });

    // -- the actions ----------------------------------------------------------------------------------------
    // A request of the menu's: the answer's text to ok(), or (refused, unreachable) why, beside the message and
    // as an alert, the focus back on its button.
    const OFFLINE = "Could not reach the server. Try again.";
    function ask(url, li, more, ok, method, body) {
      const init = { method: method || "GET", credentials: "same-origin", headers: { "X-CSRFToken": token ? token.content : "", "HX-Request": "true" } };
      if (body) init.body = new URLSearchParams(body);
      fetch(url, init).then((res) => res.text().then((html) => {
        if (res.ok) return ok(html);
        const tpl = d.createElement("template");
        tpl.innerHTML = html;
        const reason = tpl.content.textContent.replace(/\s+/g, " ").trim() || OFFLINE;
        let note = li.querySelector(".message__error");
        if (!note) { note = d.createElement("p"); note.className = "field-error message__error"; li.appendChild(note); }
        note.textContent = reason;
        say(reason, true);
        if (more.isConnected) more.focus();
        return null;
      }), () => say(OFFLINE, true));
    }
    function act(what, li, more, button) {
      const base = more.getAttribute("href"), alias = text(li, ".message__alias"), body = li.querySelector(".message__body");
      const post = (url, done, keep, body) => ask(url, li, more, () => {
        say(done);
        if (keep) more.focus(); else { pendingFocus = li.id; pane.focus({ preventScroll: true }); }
      }, "POST", body);
      if (what === "copy") {
        const no = () => say("Could not copy. Select the text and copy it instead.", true);
        if (!navigator.clipboard) no(); else navigator.clipboard.writeText(body.textContent).then(() => { say("Message copied."); more.focus(); }, no);
      } else if (what === "edit" || what === "report") {
        if (li.querySelector(".message__form")) li.querySelector(".message__form textarea").focus();
        else ask(base + "?form=" + what, li, more, (html) => form(li, html, what === "edit"));
      } else if (what === "react") { // a toggle: the stream shows the new counts
        const chip = li.querySelector('.reaction[value="' + button.dataset.emoji + '"]');
        const had = !!chip && (chip.dataset.by || "").includes(" " + me + " ");
        post(base + "/react", had ? "Reaction taken back." : "Reaction added.", true, { emoji: button.dataset.emoji });
      } else if (what === "question" || what === "answered") { // the host's, both ways
        const on = !li.querySelector(what === "question" ? ".question" : ".badge--answered");
        const done = what === "question" ? (on ? "Marked as a question." : "No longer a question.") : (on ? "Marked answered." : "Marked not answered.");
        post(base + "/" + what, done, true, { [what]: on ? "1" : "0" });
      } else if (what === "delete" || what === "remove") {
        post(base + "/" + what, button.dataset.done, false);
      } else {
        const url = button.closest("[data-member-url]").dataset.memberUrl.replace("/1/", "/" + li.dataset.author + "/");
        const ban = what === "ban-member";
        post(ban ? url.replace(/\/remove$/, "/ban") : url, alias + (ban ? " is banned from this room." : " was removed from the room."), true);
      }
    }

    // -- inline forms (edit, report) ------------------------------------------------------------------------
    function form(li, html, hideBody) {
      const body = li.querySelector(".message__body");
      body.insertAdjacentHTML("afterend", html);
      const el = li.querySelector(".message__form"), box = el.querySelector("textarea");
      htmx.process(el);
      body.hidden = hideBody;
      box.focus();
      box.setSelectionRange(box.value.length, box.value.length);
    }
    function closeForm(el, focus) {
      const li = el.closest(".message"), body = li.querySelector(".message__body"), more = li.querySelector(".message__more");
      el.remove();
      if (body) body.hidden = false;
      if (focus && more) more.focus();
    }
    log.addEventListener("click", (evt) => {
      const cancel = evt.target.closest ? evt.target.closest("[data-cancel]") : null;
      if (cancel) closeForm(cancel.closest(".message__form"), true);
    });
    log.addEventListener("keydown", (evt) => {
      const el = evt.target.closest ? evt.target.closest(".message__form") : null;
      if (!el || evt.target.tagName !== "TEXTAREA") return;
      if (evt.key === "Escape") { evt.preventDefault(); closeForm(el, true); }
      else if (evt.key === "Enter" && !evt.shiftKey && !evt.isComposing && el.querySelector("[name=body]")) { evt.preventDefault(); el.requestSubmit(); }
    });
    const fromForm = (evt) => { const ctx = evt.detail && evt.detail.ctx, el = ctx && ctx.sourceElement; return el && el.classList && el.classList.contains("message__form") ? ctx : null; };
    d.addEventListener("htmx:after:request", (evt) => {
      const ctx = fromForm(evt);
      if (!ctx || !ctx.response || ctx.response.status >= 300) return;
      const el = ctx.sourceElement, id = el.closest(".message").id;
      say(el.dataset.done);
      if (el.isConnected) { pendingFocus = id; closeForm(el, true); return; } // the stream brings the new version
      const more = d.querySelector("#" + id + " .message__more"); // it came first
      if (more) more.focus();
    });
    d.addEventListener("htmx:after:swap", (evt) => {
      const ctx = fromForm(evt);
      if (!ctx || !ctx.response || ctx.response.status < 400) return;
      const el = d.querySelector(".message__form .field-error");
      if (!el) return;
      const box = el.closest(".message__form").querySelector("textarea");
      if (box) box.focus();
      say(el.textContent, true);
    });
    const asked = log.dataset.menuFor && d.querySelector("#" + log.dataset.menuFor + " .message__more");
    delete log.dataset.menuFor;
    if (asked) open(asked);
  }
})();
