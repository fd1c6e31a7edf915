// The host's People list (#host-people, chat/_host_person.html): who is online, away or offline (from the
// "Here now" list everyone gets, #presence, in its words) and how many messages each has sent (counted up as
// messages arrive; the page and each row the stream sends carry the true count). A host control that was refused says why, once.
(() => {
  "use strict";
  const d = document, people = d.getElementById("host-people"), log = d.getElementById("log");
  if (!people) return;
  // rows: every row (a new "Here now" list), or only rows just added, which keep the server's word ("online" for
  // someone who just joined) until the list names them. A big room's "Here now" is a count: nobody's state can
  // be kept current, so the rows say none (the page as loaded said it as it was then).
  function online(rows) {
    const list = d.getElementById("presence"), counted = list && list.dataset.count;
    const here = new Map([...d.querySelectorAll("#presence li[data-member]")].map((li) => [li.dataset.member, li.dataset.state || "online"]));
    (rows || people.querySelectorAll("li[data-member]")).forEach((li) => {
      if (counted) delete li.dataset.presence;
      else if (!rows || here.has(li.dataset.member)) li.dataset.presence = here.get(li.dataset.member) || "offline";
    });
  }
  new MutationObserver(() => online()).observe(d.getElementById("presence").parentNode, { childList: true });
  new MutationObserver((records) => online(records.flatMap((r) => [...r.addedNodes]).filter((li) => li.nodeType === 1 && li.dataset.member)))
    .observe(people, { childList: true });
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
