"""The files only a Django site has: the settings module its project imports last."""

from __future__ import annotations

from deploygen.kinds.django.derive import NEEDS_CLEANUP, engine
# The module's name on the project's path: `from deploygen_settings import *` is the
# last line of the project's settings (README, "Django").
from deploygen.kinds.django.model import MODULE
from deploygen.render.layout import Target


def folder(site) -> str:
    return f"/etc/deploygen/{site.name}"


def targets(site) -> list[Target]:
    return [Target("django-settings", "django-settings", "django/deploygen_settings.py.j2",
                   f"{folder(site)}/{MODULE}.py")]


def manage_py(site) -> str:
    return site.django.manage_py or f"{site.app.root}/manage.py"


def cleaner(site) -> str | None:
    """clearsessions for the engines that keep expired sessions stored (db, cached_db, file)."""
    if engine(site) in NEEDS_CLEANUP:
        return f"{site.app.venv}/bin/python {manage_py(site)} clearsessions"
    return None


def environment(site, settings_module: str) -> list[tuple[str, str]]:
    # PYTHONPATH puts deploygen's module beside the project's; the project's own
    # folder is gunicorn's chdir (and manage.py's), which Python adds itself.
    return [("DJANGO_SETTINGS_MODULE", settings_module), ("PYTHONPATH", folder(site))]
