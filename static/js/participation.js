// Taking part, loaded by seen.js when first needed (the "participation.js" bundle, with mentions.js). A live
// message is the same bytes for everyone: who reacted or voted is data (data-by), so this marks the viewer's
// own (aria-pressed, "including yours"), hides the vote on their own question, marks and announces a mention
// of them; and draws "new since you left" from the mark seen.js keeps (#room-tools data-mark).
(() => {
  "use strict";
  const d = document, log = d.getElementById("log"), me = d.body.dataset.member, t = d.getElementById("room-tools");
  if (!log || !t) return;
  let timer = 0;
  const q = (el, s) => (el.matches(s) ? [el] : []).concat([...el.querySelectorAll(s)]);
  const top = () => Math.max(0, ...[...log.querySelectorAll(".message")].map((li) => +li.dataset.seq));
  function own(el) { // marks the viewer's reactions, votes and mentions (announce.js says a mention)
    q(el, "[data-by]").forEach((b) => {
      const mine = b.dataset.by.includes(` ${me} `), yours = b.querySelector(".yours");
      b.setAttribute("aria-pressed", mine);
      if (yours) yours.hidden = !mine;
    });
    q(el, ".message").forEach((li) => {
      const body = li.querySelector(".message__body"), vote = li.querySelector(".vote");
      if (li.dataset.author === me) { if (vote) vote.hidden = true; return; }
      if (!body || !body.querySelector(`[data-member="${me}"]`) || li.querySelector(".mentioned")) return;
      body.insertAdjacentHTML("afterend", '<p class="mentioned">Mentions you</p>');
    });
  }
  own(log);
  new MutationObserver((records) => {
    const before = top.last || 0;
    records.forEach((r) => r.addedNodes.forEach((n) => { if (n.nodeType === 1) own(n); }));
    top.last = top();
    if (+t.dataset.mark && top.last > before) later();
  }).observe(log, { childList: true });
  top.last = top();

  // New since you left: from the last message the tab had when it was hidden, or before a reconnect's burst.
  function later() {
    t.dataset.pending = "1";
    clearTimeout(timer);
    timer = setTimeout(place, 1500);
  }
  function place() {
    const mark = +t.dataset.mark;
    if (d.hidden) return;
    t.dataset.mark = t.dataset.pending = "";
    if (!mark) return;
    const fresh = [...log.querySelectorAll(".message")].filter((li) => +li.dataset.seq > mark && li.dataset.author !== me);
    if (!fresh.length) return;
    d.querySelectorAll("#new-since, .since-left-notice").forEach((el) => el.remove());
    fresh[0].insertAdjacentHTML("beforebegin", '<li id="new-since" class="since-left" tabindex="-1"><span>New since you left</span></li>');
    const n = fresh.length, text = `${n} new message${n > 1 ? "s" : ""} since you left`;
    d.getElementById("older").insertAdjacentHTML("afterend", `<p class="since-left-notice"><a href="#new-since">${text}</a></p>`);
  }
  d.addEventListener("visibilitychange", () => { if (!d.hidden && +t.dataset.mark) later(); });
  if (+t.dataset.mark) later();
})();
