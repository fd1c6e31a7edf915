"""The WSGI entry point: ``gunicorn wsgi:app`` (see gunicorn.conf.py and Procfile)."""

from chatroom import create_app

app = create_app()
