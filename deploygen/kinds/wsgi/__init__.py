"""The plain WSGI kind: any app gunicorn serves, with the common chain and no framework settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from deploygen.kinds.base import Kind
from deploygen.sitefile.model import GunicornApp, SiteBase


class WsgiApp(GunicornApp):
    """A WSGI callable gunicorn runs; deploygen renders no settings for it."""

    framework: Literal["wsgi"] = Field(description="flask | django | wsgi | asgi | php")


class WsgiSite(SiteBase):
    app: WsgiApp


class WsgiKind(Kind):
    name = "wsgi"
    site_model = WsgiSite


WSGI = WsgiKind()
