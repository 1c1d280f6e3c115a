"""App kinds: one explicit registry, keyed by `app.framework`.

Each kind is a package here (model, derive, targets; its templates in
`templates/<kind>/`). Adding one is a new package and one line below.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Discriminator, Tag, TypeAdapter

from deploygen.kinds.asgi import ASGI
from deploygen.kinds.base import Kind
from deploygen.kinds.django import DJANGO
from deploygen.kinds.flask import FLASK
from deploygen.kinds.php import PHP
from deploygen.kinds.wsgi import WSGI
from deploygen.sitefile.model import SiteBase

KINDS: dict[str, Kind] = {kind.name: kind for kind in (FLASK, DJANGO, WSGI, ASGI, PHP)}


def kind_of(site: SiteBase) -> Kind:
    return KINDS[site.app.framework]


def _framework(data: Any) -> str | None:
    app = data.get("app") if isinstance(data, dict) else getattr(data, "app", None)
    if isinstance(app, dict):
        return app.get("framework")
    return getattr(app, "framework", None)


# The site file: a union discriminated by app.framework, so each kind owns its keys.
SiteFile = Annotated[
    Union[tuple(Annotated[kind.site_model, Tag(name)] for name, kind in KINDS.items())],  # noqa: UP007
    Discriminator(_framework),
]
SITE_FILE = TypeAdapter(SiteFile)
