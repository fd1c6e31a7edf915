// The host's People list (#host-people, chat/_host_person.html): who is online, away or offline (from the
// "Here now" list everyone gets, #presence, in its words) and how many messages each has sent (counted up as messages arrive; the page
// and each row the stream sends carry the true count). A host control that was refused says why, once.
(() => {
  "use strict";
  const d = document, people = d.getElementById("host-people"), log = d.getElementById("log");
  if (!people) return;
  function online() {
    const list = d.getElementById("presence");
    if (list && list.dataset.count) return; // a big room: "Here now" is a count, so the rows keep what they say
    const here = new Map([...d.querySelectorAll("#presence li[data-member]")].map((li) => [li.dataset.member, li.dataset.state || "online"]));
    people.querySelectorAll("li[data-member]").forEach((li) => { li.dataset.presence = here.get(li.dataset.member) || "offline"; });
  }
  online();
  new MutationObserver(online).observe(d.getElementById("presence").parentNode, { childList: true });
  new MutationObserver(online).observe(people, { childList: true });
  let maxSeq = 0;
  if (log) {
    log.querySelectorAll(".message").forEach((li) => { maxSeq = Math.max(maxSeq, +li.dataset.seq || 0); });
    new MutationObserver((records) => records.forEach((r) => r.addedNodes.forEach((li) => {
      if (li.nodeType !== 1 || !li.classList.contains("message") || !(+li.dataset.seq > maxSeq)) return;
      maxSeq = +li.dataset.seq;
      const count = d.querySelector("#member-" + li.dataset.author + " .person__count");
      if (!count) return;
      const n = (parseInt(count.textContent, 10) || 0) + 1;
      count.textContent = n + (n === 1 ? " message" : " messages");
    }))).observe(log, { childList: true });
  }
  // The stream ended because this browser's sign-in did (the notice in #room-status says so and links to sign in).
  d.addEventListener("chatroom:closed", (evt) => {
    const line = d.getElementById("connection");
    if (line && evt.detail && evt.detail.why === "signed_out") line.textContent = "Not connected: your sign-in here ended.";
  });
  d.addEventListener("htmx:after:request", (evt) => {
    const ctx = evt.detail && evt.detail.ctx, el = ctx && ctx.sourceElement;
    if (!el || !el.closest || !el.closest(".host-panel") || !ctx.response || ctx.response.status < 400) return;
    const tpl = d.createElement("template");
    tpl.innerHTML = ctx.text || "";
    const reason = tpl.content.textContent.replace(/\s+/g, " ").trim();
    d.dispatchEvent(new CustomEvent("chatroom:announce", { detail: { text: reason || "That did not work.", alert: true } }));
  });
})();
