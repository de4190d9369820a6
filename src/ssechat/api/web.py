"""The chat page at `/` and its assets at `/static/{name}`: static files inside the package
(`ssechat/web/`), so a plain `pip install` serves the page without Node.

The assets are an allow-list rather than a `StaticFiles` mount: nothing else in the package
directory is reachable, there is no directory listing, and the routes live in a router
like every other resource. The page refers to its assets and to the API with relative URLs,
so the router also works under a prefix (`app.include_router(web.router, prefix="/chat")`).

The page is the standalone server's (`create_app`), not part of `create_router`/`mount`: a
host app that mounts ssechat keeps its own `/`. Every answer carries a strict Content
Security Policy (scripts and connections from this origin only, no inline script or style):
the page renders model output as sanitised Markdown, and the policy is a second wall should
that ever fail.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse

from ssechat.errors import NotFound

router = APIRouter(include_in_schema=False)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    # Revalidate every time: a new version of ssechat must not run an old page script.
    "cache-control": "no-cache",
}


@router.api_route("/", methods=["GET", "HEAD"])
async def page() -> FileResponse:
    """The chat page."""
    return FileResponse(
        WEB_DIR / "index.html", media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS
    )


@router.api_route("/static/{name}", methods=["GET", "HEAD"])
async def asset(name: str) -> FileResponse:
    """One of the page's assets."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFound(f"no asset {name!r}")
    return FileResponse(WEB_DIR / name, media_type=media_type, headers=SECURITY_HEADERS)
