// What a screen reader hears in the room: one sentence per event, said once (docs/accessibility.md has the table).
// Two live regions, in the page from the start and never replaced: #announcer (polite; each sentence is a new
// paragraph in it, so sentences queue instead of cutting each other off) and #alerts (assertive: a refused send).
// The log itself is not a live region: it would read each message's time and menu button, and one's own messages
// back. Instead this file watches the page and words each event:
//   a message from someone else   "Bea: text"            (not one's own; a burst as a count, see chatroom:quiet)
//   a message that mentions you   "Bea mentioned you: text" (even when muted: it is addressed to you)
//   a removal                     "A message from Bea was removed by the host"
//   typing                        "Kim is typing", once per person until they stop
//   people                        "Kim joined." / "Kim left.", batched (presence.js)
//   the room's state              lock, unlock, slow mode, approval, extension, the end: each change once
//   the connection                only a lasting problem, and then being back
// #mute (remembered) silences messages, typing and people; the room's state, the connection and errors still speak.
(() => {
  "use strict";
  const d = document, log = d.getElementById("log"), announcer = d.getElementById("announcer");
  if (!log || !announcer) return;
  const alerts = d.getElementById("alerts"), mute = d.getElementById("mute"), me = d.body.dataset.member;
  const host = d.body.dataset.role === "host";
  const burst = { on: false, count: 0, last: null, timer: 0 };
  let muted = false;
  try { muted = localStorage.getItem("chatroom.mute") === "1"; } catch (e) { /* storage blocked: not muted */ }
  if (mute) {
    mute.checked = muted;
    mute.addEventListener("change", () => {
      muted = mute.checked;
      try { localStorage.setItem("chatroom.mute", muted ? "1" : "0"); } catch (e) { /* not remembered */ }
    });
  }

  function say(text, alert) {
    text = (text || "").replace(/\s+/g, " ").trim();
    if (!text) return;
    const p = d.createElement("p");
    p.textContent = text;
    if (alert && alerts) { alerts.replaceChildren(p); return; }
    announcer.appendChild(p);
    while (announcer.childElementCount > 3) announcer.firstElementChild.remove(); // removals are not read
  }
  const chat = (text) => { if (!muted) say(text); };
  d.addEventListener("chatroom:announce", (evt) => say(evt.detail.text, evt.detail.alert));

  // -- messages ------------------------------------------------------------------------------------------
  const text = (li, sel) => li.querySelector(sel).textContent.trim();
  const who = (li) => text(li, ".message__alias") + (li.classList.contains("message--host") ? " (host)" : "");
  const spoken = (li) => who(li) + ": " + text(li, ".message__body");
  const mine = (li) => li.dataset.author === me;
  let maxSeq = 0;
  const removed = new Set();
  log.querySelectorAll(".message").forEach((li) => {
    maxSeq = Math.max(maxSeq, +li.dataset.seq || 0);
    if (li.dataset.removedBy) removed.add(li.id);
  });
  function arrived(li) {
    typingDone(li.dataset.author);
    if (mine(li)) return;
    if (burst.on) { burst.count++; burst.last = li; quiet(500); return; }
    one(li);
  }
  function one(li) { // a single message, read in full; one that mentions you says so (even when muted)
    if (li.querySelector('.mention[data-member="' + me + '"]')) say(who(li) + " mentioned you: " + text(li, ".message__body"));
    else chat(spoken(li));
  }
  function changed(li) {
    if (!li.dataset.removedBy || removed.has(li.id)) return; // edits are not announced
    removed.add(li.id);
    const byHost = li.dataset.removedBy === "host";
    if (byHost && host) return; // the host hears their own action from the menu (menu.js)
    if (mine(li)) { if (byHost) say("Your message was removed by the host"); return; }
    chat(byHost ? "A message from " + who(li) + " was removed by the host" : who(li) + " deleted a message");
  }
  new MutationObserver((records) => {
    const replaced = new Set();
    records.forEach((r) => r.removedNodes.forEach((n) => { if (n.nodeType === 1 && n.id) replaced.add(n.id); }));
    records.forEach((r) => r.addedNodes.forEach((li) => {
      if (li.nodeType !== 1 || !li.classList.contains("message")) return;
      const seq = +li.dataset.seq || 0;
      if (seq > maxSeq) { maxSeq = seq; arrived(li); } else if (replaced.has(li.id)) changed(li);
    }));
  }).observe(log, { childList: true });

  // A burst (the catch-up after a reconnect, a poll bringing several) is told once, as a count; a single
  // message is read in full.
  function quiet(ms) {
    if (!burst.on) { burst.on = true; burst.count = 0; burst.last = null; }
    clearTimeout(burst.timer);
    burst.timer = setTimeout(() => {
      burst.on = false;
      if (burst.count === 1) one(burst.last); // just after (re)connecting, a lone mention is still one
      else if (burst.count > 1) chat(burst.count + " new messages");
    }, ms);
  }
  d.addEventListener("chatroom:quiet", (evt) => quiet(evt.detail.ms));

  // -- typing: once per person, until their signal runs out or their message comes ----------------------
  const typists = {};
  function typingDone(member) {
    if (!typists[member]) return;
    clearTimeout(typists[member]);
    delete typists[member];
  }
  d.addEventListener("typing", (evt) => {
    let data;
    try { data = JSON.parse(evt.detail.data); } catch (e) { return; }
    const member = String(data.member);
    if (member === me) return;
    if (!typists[member]) chat(data.alias + " is typing");
    clearTimeout(typists[member]);
    typists[member] = setTimeout(() => typingDone(member), (data.ttl || 6) * 1000);
  });

  // -- people: who joined and left, batched by presence.js (chatroom:people, also a notice in the log) ---------
  d.addEventListener("chatroom:people", (evt) => chat(evt.detail.text));

  // -- the room's state (#room-status holds one .room-state; chat/_room_state.html) ----------------------
  const status = d.getElementById("room-status");
  function readState() {
    const el = status && status.querySelector(".room-state");
    return el ? { state: el.dataset.state, ends: el.dataset.ends || "", text: el.textContent.replace(/\s+/g, " ").trim() } : null;
  }
  let room = readState();
  function stateChanged() {
    const now = readState();
    if (!now || !room) { room = now || room; return; }
    const was = room;
    room = now;
    if (now.state !== was.state) {
      if (was.state === "locked" && now.state === "open") say("The host has unlocked the room." + (now.text ? " " + now.text : ""));
      else say(now.text);
    } else if (now.text !== was.text) {
      if (now.text) say(now.text);
      else if (/Slow mode/.test(was.text)) say("Slow mode is off.");
      else if (/approves/.test(was.text)) say("Messages no longer wait for the host's approval.");
    }
    if (now.state === "open" && was.state === "open" && now.ends && was.ends && now.ends !== was.ends) {
      say("The room now ends at " + now.ends + ".");
    }
  }
  if (status) new MutationObserver(stateChanged).observe(status, { childList: true });

  // -- the connection (#connection's data-state, set by live.js): a lasting problem, and being back -------
  const connection = d.getElementById("connection");
  let problem = false, problemTimer = 0;
  if (connection) new MutationObserver(() => {
    const state = connection.dataset.state, words = connection.textContent;
    clearTimeout(problemTimer);
    if (state === "live") {
      if (problem) say(words);
      problem = false;
    } else if (state === "reconnecting") {
      problemTimer = setTimeout(() => { problem = true; say(words); }, 2000); // a short drop is not news
    } else if (state === "fallback") {
      problem = true;
      say(words);
    } else if (state === "closed" && room && room.state !== "ended" && room.state !== "closed") {
      say(words);
    }
  }).observe(connection, { attributes: true, attributeFilter: ["data-state"] });

  // -- a refused send: its reason, once, as an alert (the line beside the box is not an alert itself) ------
  d.addEventListener("htmx:after:swap", (evt) => {
    const ctx = evt.detail && evt.detail.ctx;
    if (!ctx || !ctx.sourceElement || ctx.sourceElement.id !== "composer" || !ctx.response || ctx.response.status < 400) return;
    const error = d.getElementById("error-body");
    say(error ? error.textContent : "Your message was not sent.", true);
  });
})();
