"""Normalising names and bodies."""

from __future__ import annotations

from chatroom.text import clean_body, clean_line, key_of, valid_email


def test_clean_line_removes_invisible_and_control_characters():
    assert clean_line("  Pat\u200b \u202eRLO\u0007  ") == "Pat RLO"
    assert clean_line("\u200b\u200d") == ""


def test_key_folds_case_and_width():
    assert key_of("HOST") == key_of("host") == key_of("ｈｏｓｔ")
    assert key_of("Straße") == key_of("STRASSE")


def test_body_keeps_line_breaks_and_drops_controls():
    # Leading indentation stays (issue 10, kind 6): only trailing space and blank end lines go.
    assert clean_body("  a\r\nb\rc\x00d  ") == "  a\nb\ncd"


def test_email_shape():
    assert valid_email("a@b.org")
    assert not valid_email("a@b")
    assert not valid_email("a b@c.org")
