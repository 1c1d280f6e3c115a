"""The ASGI kind: an ASGI app under gunicorn with uvicorn's worker (the uvicorn-worker package).

uvicorn deprecated its own `uvicorn.workers` in 0.30 for the separate
`uvicorn-worker` package (`uvicorn_worker.UvicornWorker`). The worker is async:
its heartbeat runs beside requests, so gunicorn's `timeout` bounds none of them
(DG104), and it honours keep-alive.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from deploygen.kinds.base import Kind
from deploygen.sitefile.fields import WsgiTarget
from deploygen.sitefile.model import GunicornApp, Server, SiteBase

UVICORN_WORKER = "uvicorn_worker.UvicornWorker"


class AsgiApp(GunicornApp):
    """An ASGI callable (`module:app`) gunicorn runs with uvicorn's worker."""

    framework: Literal["asgi"] = Field(description="flask | django | wsgi | asgi | php")
    wsgi: WsgiTarget = Field(description="module:callable of the ASGI app gunicorn loads")


class AsgiServer(Server):
    """gunicorn with uvicorn's worker: one event loop per worker, no threads."""

    worker_class: Literal["uvicorn"] | None = Field(None, description="uvicorn (uvicorn_worker.UvicornWorker)")
    threads: Literal[1] | None = Field(None, description="uvicorn's worker runs one event loop, no threads")


class AsgiSite(SiteBase):
    app: AsgiApp
    server: AsgiServer


class AsgiKind(Kind):
    name = "asgi"
    site_model = AsgiSite
    worker_class = UVICORN_WORKER
    worker_classes = {"uvicorn": UVICORN_WORKER}


ASGI = AsgiKind()
