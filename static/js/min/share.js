/* sha256 f0a22eb62376ed930251f8c900dd7bbace954a984a5629df8c77602ca734bec7 */
(()=>{"use strict";const t=document,e=t.getElementById("copy-share"),n=t.getElementById("share-link");if(!(e&&n&&navigator.clipboard&&navigator.clipboard.writeText))return;const o=t.getElementById("copy-share-status");e.hidden=!1,e.addEventListener("click",()=>{navigator.clipboard.writeText(n.textContent.trim()).then(()=>{o&&(o.textContent="Link copied."),e.textContent="Copied",setTimeout(()=>{e.textContent="Copy link"},2e3)},()=>{o&&(o.textContent="Could not copy. Select the link and copy it instead.")})})})();

