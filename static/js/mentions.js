// The @-name picker of the message box, loaded by participation.js on the first "@" typed (the "mentions.js"
// bundle). Typing "@" and the start of a name offers the names here now (#presence) in a listbox under the
// box: the box keeps the focus (aria-autocomplete="list", aria-controls, aria-activedescendant: a textarea may
// not take the combobox role, so it is the ARIA 1.2 pattern on the textbox itself), the arrow keys move through
// the names, Enter or Tab puts the chosen one in, Escape closes; how many names match is announced politely.
// Without it nothing changes: a typed "@Name" is a mention all the same (chatroom/mentions.py).
(() => {
  "use strict";
  const d = document;
  if (d.getElementById("mention-list")) return;
  const list = d.createElement("ul");
  list.id = "mention-list";
  list.className = "mention-list";
  list.setAttribute("role", "listbox");
  list.setAttribute("aria-label", "People here");
  list.hidden = true;
  // Styled here (app.css stays small on the room page); CSSOM styles are allowed by the CSP.
  Object.assign(list.style, { listStyle: "none", margin: ".2rem 0", padding: "0", maxWidth: "20rem",
    border: "1px solid var(--line)", background: "var(--bg)" });
  let names = [], active = -1, start = -1;
  const fold = (s) => s.normalize("NFKC").toLowerCase();
  const say = (text) => d.dispatchEvent(new CustomEvent("chatroom:announce", { detail: { text } }));

  function present() {
    return [...d.querySelectorAll("#presence li:not(.hint)")].map((li) => li.firstChild.textContent.trim()).filter(Boolean);
  }
  function close(box) {
    list.hidden = true;
    names = [];
    active = -1;
    if (box) {
      box.removeAttribute("aria-activedescendant");
      box.removeAttribute("aria-controls");
    }
  }
  function show(box) {
    const field = box.closest(".field") || box.parentNode;
    if (list.parentNode !== field) field.appendChild(list);
    list.replaceChildren(...names.map((name, i) => {
      const li = d.createElement("li");
      li.id = "mention-option-" + i;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", i === active);
      li.textContent = name;
      Object.assign(li.style, { padding: ".3rem .5rem", cursor: "pointer" },
        i === active ? { background: "var(--accent)", color: "var(--accent-fg)" } : {});
      li.addEventListener("mousedown", (evt) => { evt.preventDefault(); pick(box, i); });
      return li;
    }));
    list.hidden = false;
    box.setAttribute("aria-controls", list.id);
    box.setAttribute("aria-activedescendant", "mention-option-" + active);
  }
  // The "@name" being typed: from an "@" at the start or after a space, up to the caret.
  function update(box) {
    const before = box.value.slice(0, box.selectionStart), found = /(^|\s)@([^@\s]{0,32})$/.exec(before);
    if (!found) { close(box); return; }
    start = before.length - found[2].length - 1;
    const typed = fold(found[2]), was = names.length;
    names = present().filter((name) => fold(name).startsWith(typed)).slice(0, 8);
    if (!names.length) { close(box); return; }
    active = 0;
    show(box);
    if (names.length !== was) say(names.length + (names.length === 1 ? " name" : " names") + " to choose from: up and down arrows, Enter to choose");
  }
  function pick(box, i) {
    const name = names[i], end = box.selectionStart;
    box.setRangeText("@" + name + " ", start, end, "end");
    close(box);
    box.focus();
    say(name + " mentioned");
  }
  d.addEventListener("input", (evt) => { if (evt.target.id === "field-body") update(evt.target); });
  d.addEventListener("keydown", (evt) => {
    const box = evt.target;
    if (box.id !== "field-body" || list.hidden || !names.length) return;
    if (evt.key === "ArrowDown" || evt.key === "ArrowUp") {
      active = (active + (evt.key === "ArrowDown" ? 1 : names.length - 1)) % names.length;
      show(box);
    } else if (evt.key === "Enter" || evt.key === "Tab") {
      pick(box, active);
    } else if (evt.key === "Escape") {
      close(box);
    } else {
      return;
    }
    evt.preventDefault();
    evt.stopImmediatePropagation(); // before composer.js: Enter chooses a name here, it does not send
  }, true);
  d.addEventListener("focusout", (evt) => { if (evt.target.id === "field-body") close(evt.target); });
  const box = d.getElementById("field-body");
  if (box) update(box);
})();
