"""A virtual screen reader inside the page under test: Guidepup's ``@guidepup/virtual-screen-reader``.

It is installed from npm with the other test tools (``tests/package.json``, ``npm ci`` in
``tests/services.sh``) and never fetched at test time. Its browser build is an ES module; we load it as a
plain script before the page's own scripts run (Chrome's ``Page.addScriptToEvaluateOnNewDocument``, which
the page's Content-Security-Policy does not apply to), and start it on ``<body>`` as soon as the document is
parsed, so it hears everything the page's scripts do from the start.

What it records is a list of phrases: what a screen reader would say on focus changes, and for live regions
``"polite: …"`` or ``"assertive: …"`` with the words of each change (its rules: ``getLiveSpokenPhrase`` in
the package). The tests compare that list with the exact sentences the room should say.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from .constants import ROOT

if TYPE_CHECKING:
    from .browser import Chrome

PACKAGE = ROOT / "tests" / "node_modules" / "@guidepup" / "virtual-screen-reader"
BUILD = PACKAGE / "lib" / "esm" / "index.browser.js"


def available() -> bool:
    """Whether ``npm ci`` has installed the package (tests/services.sh does)."""
    return BUILD.is_file()


def _script() -> str:
    source = BUILD.read_text()
    found = list(re.finditer(r"export\s*\{([^}]*)\}\s*;?", source))
    if not found:
        raise RuntimeError(f"no export list in {BUILD}: has the package changed?")
    exports = found[-1]  # the module's one export statement, near its end (license comments follow it)
    pairs = (part.partition(" as ") for part in exports.group(1).split(","))
    names = {alias.strip(): name.strip() for name, _, alias in pairs}
    body = source[: exports.start()] + f"window.__vsr = {names['virtual']};" + source[exports.end() :]
    start = (
        "document.addEventListener('readystatechange', function start() {"
        "  if (document.readyState !== 'interactive') return;"
        "  document.removeEventListener('readystatechange', start);"
        "  window.__vsr.start({container: document.body});"
        "});"
    )
    return "(function () {\n" + body + "\n" + start + "\n})();"


def install(chrome: Chrome) -> None:
    """Make every page ``chrome`` loads from now on start the virtual screen reader before its own scripts."""
    chrome.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _script()})


def phrases(chrome: Chrome) -> list[str]:
    """Everything said since the page loaded (or since ``clear``)."""
    return list(
        chrome.execute_async_script(
            "var done = arguments[arguments.length - 1];"
            "window.__vsr.spokenPhraseLog().then(function (log) { done(log.slice()); },"
            " function (e) { done(['error ' + e]); });"
        )
    )


def clear(chrome: Chrome) -> None:
    """Forget what was said so far."""
    chrome.execute_async_script(
        "var done = arguments[arguments.length - 1]; window.__vsr.clearSpokenPhraseLog().then(done, done);"
    )


def hear(chrome: Chrome, count: int, timeout: float = 10, settle: float = 1.0) -> list[str]:
    """What is said until ``count`` phrases were heard (or ``timeout``), then ``settle`` seconds more, so that a
    phrase said twice, or one too many, shows; then forget it for the next step."""
    deadline = time.time() + timeout
    said = phrases(chrome)
    while len(said) < count and time.time() < deadline:
        time.sleep(0.1)
        said = phrases(chrome)
    time.sleep(settle)
    said = phrases(chrome)
    clear(chrome)
    return said
