// Who else is typing: the stream's named "typing" events ({member, alias, ttl}), shown in #typing until they
// expire (the server's ttl: 5 s after the typist's last signal, sent at most every 3 s while they type), or until
// the typist's message arrives in the log, whichever comes first. When the stream closes (the room ended, this
// reader was removed) nobody is shown typing any more.
(() => {
  "use strict";
  const d = document, box = d.getElementById("typing"), me = d.body.dataset.member, typists = {}, posted = {};
  if (!box) return;
  function render() {
    const names = Object.keys(typists).map((k) => typists[k].alias);
    box.textContent = names.length === 0 ? "" : names.length === 1 ? names[0] + " is typing…" :
      names.slice(0, -1).join(", ") + " and " + names[names.length - 1] + " are typing…";
  }
  function done(member) {
    if (!typists[member]) return;
    clearTimeout(typists[member].timer);
    delete typists[member];
    render();
  }
  d.addEventListener("typing", (evt) => {
    let data;
    try { data = JSON.parse(evt.detail.data); } catch (e) { return; }
    if (String(data.member) === me) return;
    if (Date.now() - (posted[data.member] || 0) < 2000) return; // a signal sent with the message it typed
    if (typists[data.member]) clearTimeout(typists[data.member].timer);
    typists[data.member] = { alias: data.alias, timer: setTimeout(() => done(data.member), (data.ttl || 5) * 1000) };
    render();
  });
  // Their message arrived: they are not typing it any more.
  const log = d.getElementById("log");
  if (log) new MutationObserver((records) => records.forEach((record) => record.addedNodes.forEach((node) => {
    if (node.nodeType !== 1 || !node.classList.contains("message") || node.hasAttribute("hx-swap-oob")) return;
    posted[node.dataset.author] = Date.now();
    done(node.dataset.author);
  }))).observe(log, { childList: true });
  d.addEventListener("chatroom:closed", () => Object.keys(typists).forEach(done));
})();
