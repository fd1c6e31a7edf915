"""Helpers for the test suite, imported by test modules and by ``conftest.py`` (which keeps fixtures only).

- ``constants``: the passwords the factories use, the backend this run is on, the checkout root;
- ``app``: the suite's configuration, emptying the database, the fast app of the table-driven modules;
- ``clients``: a test client that speaks CSRF and htmx, and reading tokens out of pages;
- ``factories``: shaping data directly (a room whose time ran out, a room full of chat);
- ``world``, ``policy``: the shared world of the authorization and hostile-input tables;
- ``live``, ``browser``, ``browser_wsgi``: real gunicorn servers, HTTP and SSE clients, headless Chromium.

``pyproject.toml`` puts ``tests/`` on ``sys.path``, so ``from support.clients import Client`` works anywhere.
"""
