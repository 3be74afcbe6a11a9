"""The shared skeleton of a self-contained page: styles and scripts inline, data as escaped JSON."""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any

__all__ = ["asset", "document", "embed_json"]

_JSON_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def asset(name: str) -> str:
    """The text of a file in ``federation/pages/assets`` (package data)."""
    return resources.files("federation.pages").joinpath("assets", name).read_text(encoding="utf-8")


def embed_json(data: Any) -> str:
    """JSON safe inside a ``<script type="application/json">`` element.

    ``<``, ``>`` and ``&`` become ``\\u003c`` escapes, so no text (a chat line holding
    ``</script>`` included) can close the element; ``JSON.parse`` gives the data back as it was.
    """
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")).translate(_JSON_ESCAPES)


def document(*, title: str, css: str, body: str, script: str = "", data: Any = None) -> str:
    """One HTML5 page: ``body`` is trusted markup built by the caller with escaped values."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # Nothing may load from anywhere: the page is all there is.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
        f"<title>{html.escape(title)}</title>",
        f"<style>\n{css}\n</style>",
        "</head>",
        "<body>",
        body,
    ]
    if data is not None:
        parts.append(f'<script type="application/json" id="page-data">{embed_json(data)}</script>')
    if script:
        parts.append(f"<script>\n{script}\n</script>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)
