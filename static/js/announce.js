// Announcements. The log (role="log") reads new messages out; #announcer (role="status") says the rest
// (chatroom:announce). A burst (chatroom:quiet: the catch-up after a reconnect, a poll bringing several)
// lands while the log is quiet and is told once as a count. #mute silences the log and #typing, remembered.
(() => {
  "use strict";
  const d = document, log = d.getElementById("log");
  if (!log) return;
  const pane = log.closest('[role="log"]') || log, announcer = d.getElementById("announcer");
  const typing = d.getElementById("typing"), mute = d.getElementById("mute");
  const burst = { on: false, count: 0, timer: 0 };
  let muted = false;
  try { muted = localStorage.getItem("chatroom.mute") === "1"; } catch (e) { /* storage blocked: not muted */ }
  function regions() {
    pane.setAttribute("aria-live", muted || burst.on ? "off" : "polite");
    if (typing) typing.setAttribute("aria-live", muted ? "off" : "polite");
  }
  if (mute) {
    mute.checked = muted;
    mute.addEventListener("change", () => {
      muted = mute.checked;
      try { localStorage.setItem("chatroom.mute", muted ? "1" : "0"); } catch (e) { /* not remembered */ }
      regions();
    });
  }
  regions();
  function announce(text) {
    if (!announcer) return;
    announcer.textContent = "";
    setTimeout(() => { announcer.textContent = text; }, 100);
  }
  // The log stays quiet while a burst lands (longer than a rendering frame), then one count is announced.
  function quiet(ms) {
    if (!burst.on) { burst.on = true; burst.count = 0; regions(); }
    clearTimeout(burst.timer);
    burst.timer = setTimeout(() => {
      const n = burst.count;
      burst.on = false;
      regions();
      if (n && !muted) announce(n === 1 ? "1 new message" : n + " new messages");
    }, ms);
  }
  d.addEventListener("chatroom:announce", (evt) => announce(evt.detail.text));
  d.addEventListener("chatroom:quiet", (evt) => quiet(evt.detail.ms));
  d.addEventListener("chatroom:arrived", (evt) => {
    if (burst.on) { burst.count += evt.detail.count; quiet(500); }
  });
})();
