"""Real browsers for the browser tests: Debian's headless Chromium driven through chromedriver (selenium),
the app on gunicorn as in ``support/live.py``, nginx middleboxes in front of it, and axe-core injected into pages.

Tools come from Debian (``tests/services.sh`` installs chromium, chromium-driver and nginx when they are
missing and it runs as root); axe-core is vendored in ``tests/vendor``. A missing tool skips the browser
tests, except with ``CHATROOM_REQUIRE_SERVICES=1`` (CI), where it fails them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from .constants import PASSWORD, REQUIRE, ROOM_PASSWORD, ROOT
from .live import GUNICORN, Server, free_port, wait_until_healthy

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
AXE = ROOT / "tests" / "vendor" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--force-device-scale-factor=1",
    "--lang=en-GB",
]


def missing_tools() -> list[str]:
    """What the browser tests need and this machine lacks."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER, NGINX) if not os.access(path, os.X_OK)]
    if not AXE.is_file():
        missing.append(str(AXE))
    return missing


def require_tools(extra: Sequence[str] = ()) -> None:
    """Skip the calling test, or fail it where the services are required (CI), when a browser tool is missing.

    ``extra``: more things the caller found missing (the screen reader's build, say).
    """
    missing = [*missing_tools(), *extra]
    if missing:
        message = f"browser tests need {', '.join(missing)} (tests/services.sh installs them as root)"
        if REQUIRE:
            pytest.fail(message)
        pytest.skip(message)


class AppServer(Server):
    """A gunicorn server as in ``live.py``, serving ``browser_wsgi.py`` (both here) with extra app settings."""

    def __init__(self, database_url: str, redis_url: str | None, settings: dict[str, Any] | None = None) -> None:
        super().__init__(database_url, redis_url, CHATROOM_TEST_SETTINGS=json.dumps(settings or {}))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AppServer:
        self.log.parent.mkdir(exist_ok=True)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [GUNICORN, "-c", "gunicorn.conf.py", "--pythonpath", "tests", "support.browser_wsgi:app"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if not wait_until_healthy(self.port, self.proc, 30):
            raise RuntimeError(f"gunicorn did not start:\n{self.log.read_text()[-3000:]}")
        return self


# -- nginx: the middleboxes our users meet ---------------------------------------------------------------

MIDDLEBOXES = {
    # Passes everything on as it comes (nginx's defaults plus what an SSE deployment should set).
    "plain": "",
    # Compresses the event stream, so it delivers nothing until the response ends. proxy_buffering alone
    # would not do it: nginx passes each chunk of a chunked response on at once (shared/design.md).
    "gzip": "gzip on; gzip_types text/event-stream; gzip_proxied any; gzip_min_length 0;"
    " proxy_ignore_headers X-Accel-Buffering;",
    # Refuses the stream outright.
    "refuse": "location ~ /events$ { return 502; }",
}


class Nginx:
    """nginx in front of ``upstream_port``, in one of the ``MIDDLEBOXES`` modes; a single foreground process."""

    def __init__(self, upstream_port: int, mode: str = "plain") -> None:
        self.port = free_port()
        self.upstream = upstream_port
        self.mode = mode
        self.dir = Path(tempfile.mkdtemp(prefix=f"nginx-{mode}-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        rule = MIDDLEBOXES[self.mode]
        http_rule, server_rule = ("", rule) if rule.startswith("location") else (rule, "")
        temp = " ".join(
            f"{name}_temp_path {self.dir / name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        return f"""
daemon off;
master_process off;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 512; }}
http {{
  access_log {self.dir}/access.log;
  {temp}
  {http_rule}
  server {{
    listen 127.0.0.1:{self.port};
    {server_rule}
    location / {{
      proxy_pass http://127.0.0.1:{self.upstream};
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header Connection "";
      proxy_read_timeout 120s;
    }}
  }}
}}
"""

    def start(self) -> Nginx:
        conf = self.dir / "nginx.conf"
        conf.write_text(self.config())
        with (self.dir / "stderr.log").open("wb") as log:
            self.proc = subprocess.Popen([NGINX, "-p", str(self.dir), "-c", str(conf)], stdout=log, stderr=log)
        if not wait_until_healthy(self.port, self.proc, 10):
            raise RuntimeError(f"nginx did not start: {(self.dir / 'stderr.log').read_text()}{self.error_log()}")
        return self

    def requests(self, needle: str) -> list[str]:
        """Access log lines whose request contains ``needle``."""
        path = self.dir / "access.log"
        return [line for line in path.read_text().splitlines() if needle in line] if path.exists() else []

    def error_log(self) -> str:
        path = self.dir / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


# -- Chromium ---------------------------------------------------------------------------------------------


class Chrome(webdriver.Chrome):
    """A headless Chromium with its own fresh profile; ``javascript=False`` blocks page scripts."""

    def __init__(self, javascript: bool = True, width: int = 1280, height: int = 900) -> None:
        self.profile = tempfile.mkdtemp(prefix="chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.add_argument(f"--window-size={width},{height}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        if not javascript:
            options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
        super().__init__(options=options, service=Service(CHROMEDRIVER))
        self.set_page_load_timeout(30)
        self.set_script_timeout(30)

    def quit(self) -> None:
        if getattr(self, "_quit", False):
            return
        self._quit = True
        try:
            super().quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def get(self, url: str) -> None:
        """Load ``url``; once more if Chromium's renderer missed the page-load timeout.

        CI runs both backends' passes side by side on two cores, and a renderer starved there for the
        whole timeout has been seen (``Timed out receiving message from renderer``) while the server
        answered. A second miss is a real failure.
        """
        try:
            super().get(url)
        except TimeoutException as error:
            if "renderer" not in str(error):
                raise
            print(f"Chromium's renderer timed out loading {url}; loading it again")
            self.execute_cdp_cmd("Page.stopLoading", {})
            super().get(url)

    # -- conveniences --

    def css(self, selector: str) -> WebElement:
        return self.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[WebElement]:
        return self.find_elements(By.CSS_SELECTOR, selector)

    def fill(self, fields: dict[str, str]) -> None:
        """Type into form fields by id (``field-<name>``), replacing what is there."""
        for name, value in fields.items():
            element = self.css(f"#field-{name}")
            element.clear()
            element.send_keys(value)

    def set_value(self, selector: str, value: str) -> None:
        """Set an input's value directly (date pickers do not take typed text reliably)."""
        self.execute_script("arguments[0].value = arguments[1]", self.css(selector), value)

    def wait(self, predicate: Callable[[], Any], timeout: float = 10, message: str = "") -> Any:
        """Poll ``predicate`` until it returns something truthy; fail with ``message`` after ``timeout`` s."""
        deadline = time.time() + timeout
        last: Any = None
        while time.time() < deadline:
            try:
                last = predicate()
            except Exception as error:  # the page may be mid-navigation
                last = error
            if last and not isinstance(last, Exception):
                return last
            time.sleep(0.1)
        raise AssertionError(
            f"timed out after {timeout} s: {message or predicate} (last: {last!r}; at {self.current_url}, "
            f"title {self.title!r})"
        )

    def text_of(self, selector: str) -> str:
        return str(
            self.execute_script("var e = document.querySelector(arguments[0]); return e ? e.textContent : ''", selector)
        )

    def emulate(self, width: int | None = None, height: int = 800, dark: bool | None = None) -> None:
        """Viewport width (as a phone, or at 400% zoom) and the system colour scheme."""
        if width is not None:
            self.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
        if dark is not None:
            self.execute_cdp_cmd(
                "Emulation.setEmulatedMedia",
                {"features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]},
            )

    def allow_clipboard(self, origin: str) -> None:
        self.execute_cdp_cmd(
            "Browser.grantPermissions",
            {"origin": origin, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
        )

    def bytes_received(self) -> dict[str, int]:
        """Bytes on the wire per URL (headers and compressed bodies) since the last call, from Chrome's log."""
        urls: dict[str, str] = {}
        sizes: dict[str, int] = {}
        for entry in self.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message["method"] == "Network.responseReceived":
                urls[params["requestId"]] = params["response"]["url"]
            elif message["method"] == "Network.loadingFinished" and params["requestId"] in urls:
                sizes[urls[params["requestId"]]] = int(params["encodedDataLength"])
        return sizes

    def errors(self) -> list[str]:
        """Severe console entries since the last call (script errors, failed loads, CSP violations)."""
        return [entry["message"] for entry in self.get_log("browser") if entry["level"] == "SEVERE"]

    def axe(self) -> list[dict[str, Any]]:
        """axe-core's WCAG 2.0/2.1/2.2 A and AA violations on the current page."""
        if not self.execute_script("return !!window.axe"):
            self.execute_script(AXE.read_text())
        result = self.execute_async_script(
            "var done = arguments[arguments.length - 1];"
            "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})"
            ".then(function (r) { done(r.violations); }, function (e) { done([{id: 'axe-error', help: String(e),"
            " nodes: []}]); });",
            WCAG_AA,
        )
        return list(result)


def describe(violations: list[dict[str, Any]]) -> str:
    """axe violations, one line per failing element, for an assertion message."""
    lines = []
    for violation in violations:
        for node in violation.get("nodes", [])[:5] or [{}]:
            target = node.get("target", "")
            summary = (node.get("failureSummary") or "").replace("\n", " ")[:300]
            lines.append(f"{violation['id']} ({violation.get('impact')}): {target} {summary}")
    return "\n".join(lines)


# -- what a person does in the browser, shared by the browser tests ----------------------------------------


def join_room(chrome: Chrome, base: str, code: str, alias: str) -> None:
    """Join room ``code`` as ``alias`` through the real join form, and wait for the log."""
    chrome.get(f"{base}/r/{code}")
    chrome.fill({"alias": alias, "password": ROOM_PASSWORD})
    chrome.css("form[action$='/join'] button[type=submit]").click()
    chrome.wait(lambda: chrome.all("#log"), message=f"{alias} in the room")


def sign_in(chrome: Chrome, base: str, email: str) -> None:
    """Sign in as ``email`` through the real form, and wait for the dashboard."""
    chrome.get(f"{base}/login")
    chrome.fill({"email": email, "password": PASSWORD})
    chrome.css("form[action='/login'] button[type=submit]").click()
    chrome.wait(lambda: chrome.current_url.endswith("/rooms/"), message=f"{email} signed in")


def connection_state(chrome: Chrome) -> str:
    """The room page's connection state (``#connection``'s ``data-state``: live, reconnecting, fallback...)."""
    return str(chrome.execute_script("var c = document.getElementById('connection'); return c && c.dataset.state"))
