// Who else is typing: the stream's named "typing" events ({member, alias, ttl}), shown in #typing until they expire.
(() => {
  "use strict";
  const d = document, box = d.getElementById("typing"), me = d.body.dataset.member, typists = {};
  if (!box) return;
  function render() {
    const names = Object.keys(typists).map((k) => typists[k].alias);
    box.textContent = names.length === 0 ? "" : names.length === 1 ? names[0] + " is typing…" :
      names.slice(0, -1).join(", ") + " and " + names[names.length - 1] + " are typing…";
  }
  d.addEventListener("typing", (evt) => {
    let data;
    try { data = JSON.parse(evt.detail.data); } catch (e) { return; }
    if (String(data.member) === me) return;
    if (typists[data.member]) clearTimeout(typists[data.member].timer);
    typists[data.member] = { alias: data.alias, timer: setTimeout(() => {
      delete typists[data.member];
      render();
    }, (data.ttl || 6) * 1000) };
    render();
  });
})();
