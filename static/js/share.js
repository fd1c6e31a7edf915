// The owner page's share link: a "Copy link" button beside it (shown only here, with JavaScript and a clipboard);
// it says what it did. Without JavaScript the link is plain text to select.
(() => {
  "use strict";
  const d = document, button = d.getElementById("copy-share"), link = d.getElementById("share-link");
  if (!button || !link || !(navigator.clipboard && navigator.clipboard.writeText)) return;
  const said = d.getElementById("copy-share-status");
  button.hidden = false;
  button.addEventListener("click", () => {
    navigator.clipboard.writeText(link.textContent.trim()).then(() => {
      if (said) said.textContent = "Link copied.";
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = "Copy link"; }, 2000);
    }, () => { if (said) said.textContent = "Could not copy. Select the link and copy it instead."; });
  });
})();
