"""The web application object: routers, static files, shared state and error bodies.

Owns :func:`create_app`, which wires the JSON API (:mod:`cctv_id.web.api`, under
``/api``), the pages (:mod:`cctv_id.web.pages`), the evidence files
(:mod:`cctv_id.web.files`) and ``/static``; :class:`WebState`, the models loaded once
and shared by every request (detector and encoder, loaded on first use under a lock); and
the error policy: every error leaves as JSON ``{"error": "one line"}`` — 400 for bad input
(a request FastAPI cannot validate answers 400 too, not 422, naming the parameter),
401 / 403 for credentials and roles, 404 for unknown things, 503 when the database cannot be
reached, 500 (without details) for anything unexpected.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..cli.context import AppContext
from ..errors import CctvIdError, ConfigError, InputError, ModelError, NotFoundError, StoreError
from .auth import AuthError

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).with_name("static")


class WebState:
    """What requests share: the AppContext (one repository) and lazily loaded models."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx
        self._lock = threading.Lock()
        self.infer_lock = threading.Lock()  # one photo through the models at a time
        self._detector = None

    def detector(self):
        with self._lock:
            if self._detector is None:
                self._detector = self.ctx.detector(upscale=1.0, tile_size=0)
            return self._detector

    def encoder(self):
        with self._lock:
            return self.ctx.encoder()


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "error"


def error_response(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": _one_line(message)}, status_code=status, headers=headers)


def _status_of(exc: CctvIdError) -> int:
    if isinstance(exc, AuthError):
        return 401
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, (StoreError, ModelError)):
        return 503
    if isinstance(exc, ConfigError):
        return 500
    return 400


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = [str(x) for x in err.get("loc", ()) if x not in ("query", "body", "path", "header")]
        where = ".".join(loc) or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "invalid parameter " + "; ".join(parts) if parts else "invalid request"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return error_response(400, _validation_message(exc))

    @app.exception_handler(CctvIdError)
    async def app_error(request: Request, exc: CctvIdError):
        status = _status_of(exc)
        if status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        return error_response(status, str(exc))

    @app.exception_handler(ValueError)
    async def value_error(request: Request, exc: ValueError):
        return error_response(400, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, f"internal error ({type(exc).__name__})")


def create_app(app_ctx: AppContext) -> FastAPI:
    """The application over ``app_ctx``'s database and data folder."""
    from . import api, files, pages

    app = FastAPI(title="cctv-id", version=_version(),
                  description="Hits, tracks, persons and runs of the cctv-id database. "
                              "Every route needs credentials: the session cookie of a login, "
                              "`Authorization: Bearer <token>` (`cctv-id user token NAME`) or "
                              "HTTP Basic. Errors are `{\"error\": \"one line\"}`; times are "
                              "ISO 8601 UTC.",
                  openapi_url=None, docs_url=None, redoc_url=None)
    app.state.ctx = app_ctx
    app.state.web = WebState(app_ctx)
    _install_error_handlers(app)
    app.include_router(api.router, prefix="/api")
    app.include_router(files.router)
    app.include_router(pages.router)
    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _version() -> str:
    from .. import __version__

    return __version__
