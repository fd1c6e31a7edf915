// The message box (#composer, #field-body): Enter sends, Shift+Enter starts a new line; typing tells the others
// (POST to its data-typing-url, at most every 3 s). After a send htmx morphs the fresh #composer into the page, so
// the box (and the focus in it) stays; a message that went through is cleared from it here (a morph keeps input).
// Nothing typed is ever lost:
//   - An Enter that belongs to an input method's composition (Japanese, Chinese, Korean…) never sends, in every
//     engine's event order. Chromium and Firefox send the committing Enter as a keydown with isComposing (keyCode
//     229); Safari fires compositionend first and then the Enter keydown, not composing any more but still keyCode
//     229. So the composition is tracked with compositionstart/compositionend, and an Enter keydown is ignored
//     while composing, when its keyCode is 229, or when it comes in the same task right after compositionend.
//   - A refused htmx request (4xx, 429, 5xx) or one with no answer at all leaves the page usable: the server's own
//     re-rendered composer is swapped in (it keeps the text); any other answer is not swapped: the form stays as it
//     is, the reason is shown beside it (role="alert"), and with Retry-After its button waits that long, then works
//     again. With no answer (offline), the message is marked "not sent" with a button to try again: the same form,
//     so the same one-time token, so a retry can never post twice. The stream and the poll (live.js) are not ours.
//   - Under pre-moderation the author's own held messages wait beside the box (#held, "waiting for the host");
//     the host's decision reaches this seat alone (a named "held" event): approved, the item goes (the message
//     itself arrives in the log); declined, it says so.
//   - The room's state reaches the composer: locked (for participants), ended, or this seat closed (the stream's
//     close event, chatroom:closed from live.js) make the box read-only and the button disabled, with the reason;
//     the text stays, to copy. Unlocking opens it again.
(() => {
  "use strict";
  const d = document, token = d.querySelector('meta[name="csrf-token"]'), host = d.body.dataset.role === "host";
  let lastTyping = 0, composing = false, justComposed = false, shut = "";
  const say = (text) => d.dispatchEvent(new CustomEvent("chatroom:announce", { detail: { text } }));

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

  // -- input methods ---------------------------------------------------------------------------------------
  d.addEventListener("compositionstart", (evt) => { if (evt.target.id === "field-body") composing = true; });
  d.addEventListener("compositionend", (evt) => {
    if (evt.target.id !== "field-body") return;
    composing = false;
    justComposed = true; // Safari's committing Enter keydown follows in this same task
    setTimeout(() => { justComposed = false; }, 0);
  });
  d.addEventListener("keydown", (evt) => {
    const box = evt.target;
    if (box.id !== "field-body" || evt.key !== "Enter" || evt.shiftKey) return;
    if (evt.isComposing || composing || justComposed || evt.keyCode === 229) return; // the input method's Enter
    evt.preventDefault();
    const button = box.form && box.form.querySelector("button[type=submit]");
    if (box.form && box.value.trim() && !box.readOnly && !(button && button.disabled)) box.form.requestSubmit();
  });

  d.addEventListener("input", (evt) => {
    const box = evt.target, now = Date.now();
    if (box.id !== "field-body" || !box.dataset.typingUrl || now - lastTyping < 3000 || !box.value.trim()) return;
    lastTyping = now;
    fetch(box.dataset.typingUrl, { method: "POST", headers: { "X-CSRFToken": token ? token.content : "" }, credentials: "same-origin" })
      .catch(() => { /* typing is best effort */ });
  });

  // -- refused and failed requests ---------------------------------------------------------------------------
  const ours = (ctx) => {
    const el = ctx && ctx.sourceElement;
    return !!el && el.id !== "connection" && !el.hasAttribute("hx-sse:connect"); // not the stream, not the poll
  };
  const formOf = (el) => (el.tagName === "FORM" ? el : el.closest("form")) || el;
  function seconds(headers) {
    const raw = headers && headers.get("Retry-After");
    if (!raw) return 0;
    const n = /^\d+$/.test(raw) ? +raw : Math.ceil((Date.parse(raw) - Date.now()) / 1000);
    return n > 0 ? n : 0;
  }
  function reasonIn(html, status) {
    const tpl = d.createElement("template");
    tpl.innerHTML = html || "";
    const found = tpl.content.querySelector(".error-message, .field-error, [role=alert]");
    const text = found ? found.textContent.replace(/^\s*Error:\s*/, "").trim() : "";
    if (text) return text;
    if (status === 429) return "Too many attempts. Wait a moment and try again.";
    if (status >= 500) return "Something went wrong on our side, and it was not done. Try again.";
    return "That did not work. Reload the page and try again.";
  }
  // The reason beside the form (one note per form, replaced each time), announced.
  function note(form, text, retry) {
    let p = form.querySelector(":scope > .refusal") || (form.nextElementSibling && form.nextElementSibling.classList.contains("refusal") ? form.nextElementSibling : null);
    if (!p) {
      p = d.createElement("p");
      p.className = "refusal field-error";
      p.setAttribute("role", "alert");
      if (form.tagName === "FORM") form.appendChild(p); else form.insertAdjacentElement("afterend", p);
    }
    p.textContent = text;
    if (retry) {
      const button = d.createElement("button");
      button.type = "button";
      button.className = "secondary small retry";
      button.textContent = "Try again";
      button.addEventListener("click", () => { p.remove(); form.requestSubmit ? form.requestSubmit() : form.click(); });
      p.append(" ", button);
    }
    return p;
  }
  // Retry-After: the form's buttons wait that long, then work again (and say so).
  function hold(form, wait) {
    const buttons = [...form.querySelectorAll("button[type=submit]")];
    if (!buttons.length || !wait) return;
    form.dataset.wait = String(Date.now() + wait * 1000);
    buttons.forEach((b) => { b.disabled = true; });
    setTimeout(() => {
      if (!form.isConnected) return;
      delete form.dataset.wait;
      if (!(form.id === "composer" && shut)) buttons.forEach((b) => { b.disabled = false; });
      const p = form.querySelector(".refusal") || form.querySelector(".field-error");
      if (form.dataset.closed === "closed") { if (p) p.remove(); return; } // shut for good meanwhile: no "again"
      if (p) p.textContent = form.id === "composer" ? "You can send again now." : "You can try again now.";
    }, wait * 1000);
  }
  d.addEventListener("htmx:after:request", (evt) => {
    const ctx = evt.detail.ctx;
    if (!ours(ctx) || !ctx.response || ctx.response.status < 400) return;
    const status = ctx.response.status, source = ctx.sourceElement;
    ctx.chatroomWait = seconds(ctx.response.headers);
    // The composer re-rendered by the server, with what was typed and the reason: swap it in.
    if (source.id === "composer" && /id="composer"/.test(ctx.text || "")) return;
    // The server placed its reason itself, out of band (a host control's error line): swap that in.
    if (/hx-swap-oob/.test(ctx.text || "")) return;
    evt.preventDefault(); // anything else (an error page's fragment) would replace the form: keep the form
    const form = formOf(source), text = reasonIn(ctx.text, status);
    note(form, text, false);
    say(text);
    if (source.id === "composer") d.dispatchEvent(new CustomEvent("chatroom:refused", { detail: { status } }));
  });
  d.addEventListener("htmx:error", (evt) => {
    const ctx = evt.detail.ctx;
    if (!ours(ctx) || (ctx.response && ctx.response.status)) return;
    const form = formOf(ctx.sourceElement);
    const text = form.id === "composer"
      ? "Not sent: no connection. Your message is kept here; try again when you are back online."
      : "Not done: no connection. Try again when you are back online.";
    note(form, text, true);
    if (form.id === "composer") form.dataset.unsent = "1";
    say(text);
    d.dispatchEvent(new CustomEvent("chatroom:unreachable"));
  });
  d.addEventListener("htmx:finally:request", (evt) => {
    const ctx = evt.detail.ctx;
    if (!ours(ctx) || !ctx.chatroomWait) return;
    const wait = ctx.chatroomWait, id = ctx.sourceElement.id;
    // After htmx has enabled the form's button again (it does so once this event is over).
    setTimeout(() => {
      const el = (id && d.getElementById(id)) || ctx.sourceElement;
      if (el && el.isConnected) hold(formOf(el), wait);
    }, 0);
  });

  // -- the room's state --------------------------------------------------------------------------------------
  // Why posting is closed now ("" when it is open): the stream's close event, else the room's state notice.
  let closedBy = "";
  const SAID = "said"; // the server closed the stream and said why: its notice (chat/_notice.html) in #room-status
  function reason() {
    if (closedBy === SAID) {
      const notice = d.querySelector("#room-status .notice");
      return (notice ? notice.textContent.trim() : "You can no longer post here.") + " Your text is kept, to copy.";
    }
    if (closedBy) return closedBy;
    const marker = d.querySelector("#room-status [data-posting]");
    if (!marker) return "";
    if (marker.dataset.posting === "locked" && host) return "";
    return marker.textContent.trim();
  }
  function apply() {
    const form = d.getElementById("composer");
    if (!form || (form.dataset.closed === "closed" && !closedBy)) return; // the server said so for good (removed, ended)
    const box = form.querySelector("textarea"), button = form.querySelector("button[type=submit]");
    shut = reason();
    let state = d.getElementById("composer-state");
    if (shut) {
      if (!state) {
        state = d.createElement("p");
        state.id = "composer-state";
        state.className = "composer__state";
        form.insertBefore(state, form.firstChild);
      }
      state.textContent = shut;
      form.dataset.closed = closedBy ? "closed" : "locked";
      if (box) box.readOnly = true;
      if (button) button.disabled = true;
    } else if (form.dataset.closed) {
      delete form.dataset.closed;
      if (state) state.remove();
      if (box) box.readOnly = false;
      if (button && !form.dataset.wait) button.disabled = false;
    }
  }
  const status = d.getElementById("room-status");
  if (status) new MutationObserver(apply).observe(status, { childList: true, subtree: true, characterData: true });
  d.addEventListener("chatroom:closed", (evt) => {
    const why = evt.detail && evt.detail.why;
    // The server said why (removed, banned, ended, signed out): the box says it in the notice's words, which may
    // arrive just after this (the observer above applies them). A connection lost for good says to reload.
    closedBy = why && why !== "gone" ? SAID : "You are no longer connected to this room: reload the page to post again.";
    apply();
  });
  apply();

  // -- held messages (pre-moderation): what became of one, from this seat's own "held" events -------------------
  d.addEventListener("held", (evt) => {
    let data;
    try { data = JSON.parse(evt.detail.data); } catch (e) { return; }
    const item = d.getElementById("held-" + data.id);
    if (!item) return;
    if (data.outcome === "approved") { item.remove(); return; } // it takes its place in the log, from the stream
    item.dataset.held = "rejected";
    item.textContent = "The host declined your message.";
    say("The host declined your message.");
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
    apply();
    const box = d.getElementById("field-body"), res = ctx.response;
    if (box && res && res.status < 300 && box.value === sent) box.value = ""; // not what was typed since
    if (box && d.activeElement !== box) box.focus(); // after a click on Send
    lastTyping = 0;
  });
})();
