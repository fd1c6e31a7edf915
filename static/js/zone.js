// The room form (form[data-suggest], a new room): the browser's own time zone instead of UTC when it can tell
// and the server knows it, and the suggested times (a start in five minutes, an end an hour later) as wall-clock
// times in the chosen zone, following it until the user changes the times themselves. Without JavaScript the
// form offers the same list (a datalist) and the server's suggestion, in UTC.
(() => {
  "use strict";
  const d = document, form = d.querySelector("form[data-suggest]");
  if (!form || !window.Intl) return;
  const zone = d.getElementById("field-timezone"), start = d.getElementById("field-starts_at");
  const end = d.getElementById("field-ends_at");
  if (!zone || !start || !end) return;
  let touched = false;
  [start, end].forEach((el) => el.addEventListener("input", () => { touched = true; }));
  const offered = new Set([...d.querySelectorAll("#zones option")].map((o) => o.value));
  function wall(date, tz) {
    const parts = {};
    new Intl.DateTimeFormat("en-CA", {
      timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    }).formatToParts(date).forEach((p) => { parts[p.type] = p.value; });
    return parts.year + "-" + parts.month + "-" + parts.day + "T" + parts.hour + ":" + parts.minute;
  }
  function suggest() {
    const tz = zone.value.trim();
    if (touched || !offered.has(tz)) return;
    const at = new Date(Math.ceil(Date.now() / 60000) * 60000 + 5 * 60000);
    start.value = wall(at, tz);
    end.value = wall(new Date(at.getTime() + 3600000), tz);
  }
  let own = "";
  try { own = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* the browser cannot tell */ }
  if (own && offered.has(own) && zone.value === "UTC") zone.value = own;
  suggest();
  zone.addEventListener("change", suggest);
})();
