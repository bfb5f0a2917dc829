"""The page a person opens at a server's address: a chat with a language model (pages/chat.html) or a
prediction form for any other model (pages/predict.html).

Each page is one static HTML file shipped in the package, with its CSS and JavaScript inline (the script
both share, pages/common.js, inlined as the page is read): no build step, nothing from another address, so it works offline. The page holds no data and no secret, so it is
served without the token; everything it shows it asks of the API (GET /metadata, POST /predict,
POST /v1/chat/completions), sending the token the person gives it, so with ``--token`` the data stays
behind the token. Its Content-Security-Policy lets it reach only its own server.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

# inline script and style only, requests to this server only, no frames, forms or plugins
POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
          "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-cache"}


def page_html(name: str) -> str:
    """The text of pages/`name`, as shipped in the package, with pages/common.js (the token, error texts and
    metrics both pages show) inlined where its script says ``// common.js``."""
    pages = files(__package__).joinpath("pages")
    html = pages.joinpath(name).read_text(encoding="utf-8")
    return html.replace("// common.js\n", pages.joinpath("common.js").read_text(encoding="utf-8"), 1)


def add_page(app: FastAPI, name: str) -> None:
    """GET / answers pages/`name`; it stays out of the OpenAPI schema, which describes the API."""
    html = page_html(name)

    @app.get("/", include_in_schema=False)
    async def page():
        return HTMLResponse(html, headers=HEADERS)
