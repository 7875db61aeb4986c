"""The browser side of the service: the playground at `/`, and Swagger UI (`/docs`) and ReDoc
(`/redoc`) with every asset served from here, so all three work on a host with no internet.

Swagger UI's and ReDoc's bundles come from the `fastapi-offline` package (package data, installed
with the service); the playground's page, script and style sheet live in `static/` beside this
file. FastAPI's own docs pages load their assets from a public CDN, so the app is created with
`docs_url=None, redoc_url=None` and `install_web` adds these instead.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
STATIC_URL = "/static"
DOCS_ASSETS_URL = "/static/docs"
DOCS_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js")
# ReDoc's side menu shows Redocly's logo from their CDN whatever the options; pointed at an empty
# data URL it fails to load, ReDoc hides it, and the "API docs by Redocly" credit stays.
REDOC_LOGO_URL = "https://cdn.redoc.ly/redoc/logo-mini.svg"
# The browser enforces what the pages promise: nothing is fetched from anywhere but this service
# (Swagger UI's and FastAPI's inline boot scripts and styles need 'unsafe-inline'; ReDoc runs its
# search in a blob: worker and draws small images from data: URLs).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'self'; base-uri 'self'; form-action 'self'"
)


def docs_assets_dir() -> Path:
    """Where the installed `fastapi-offline` keeps Swagger UI's and ReDoc's bundles."""
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or spec.origin is None:
        raise RuntimeError("the docs pages need the fastapi-offline package: pip install fastapi-offline")
    folder = Path(spec.origin).parent / "static"
    missing = [name for name in DOCS_ASSETS if not (folder / name).is_file()]
    if missing:
        raise RuntimeError(f"fastapi-offline at {folder} lacks {', '.join(missing)}; reinstall it")
    return folder


def install_web(app: FastAPI) -> None:
    """Mount the playground, the docs pages and their assets on `app`."""
    assets = docs_assets_dir()
    # Routes before mounts, and the more specific mount first: Starlette takes the first match.
    app.include_router(_router(app, assets))
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=assets), name="docs-assets")
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")


def _page(response: HTMLResponse) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


def _router(app: FastAPI, assets: Path) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    playground = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    redoc_js = (assets / "redoc.standalone.js").read_text(encoding="utf-8").replace(REDOC_LOGO_URL, "data:,")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect = "/docs/oauth2-redirect"

    def root(request: Request) -> str:
        # Behind a proxy that strips a prefix (uvicorn --root-path), links must carry it back.
        return str(request.scope.get("root_path", "")).rstrip("/")

    @router.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return _page(HTMLResponse(playground))

    @router.get(f"{DOCS_ASSETS_URL}/redoc.standalone.js")
    async def redoc_bundle() -> Response:
        return Response(redoc_js, media_type="text/javascript", headers={"Cache-Control": "max-age=3600"})

    @router.get("/docs", response_class=HTMLResponse)
    async def swagger_ui(request: Request) -> HTMLResponse:
        base = root(request)
        return _page(
            get_swagger_ui_html(
                openapi_url=base + openapi_url,
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{base}{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{base}{DOCS_ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{base}{STATIC_URL}/favicon.svg",
                oauth2_redirect_url=base + oauth2_redirect,
                # Swagger UI would otherwise send the schema to validator.swagger.io from any host
                # that is not localhost.
                swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
            )
        )

    @router.get(oauth2_redirect, response_class=HTMLResponse)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get("/redoc", response_class=HTMLResponse)
    async def redoc(request: Request) -> HTMLResponse:
        base = root(request)
        return _page(
            get_redoc_html(
                openapi_url=base + openapi_url,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{base}{DOCS_ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{base}{STATIC_URL}/favicon.svg",
                with_google_fonts=False,
            )
        )

    return router
