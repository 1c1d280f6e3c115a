"""The probe app gunicorn runs during a drill of a Django site: the Flask probe's endpoints, in Django.

One file is the whole project. First what a project's own settings hold (its apps, middleware
and URLs), then, as the last line of those settings, `from deploygen_settings import *`: the
module deploygen rendered, found through the PYTHONPATH the rendered unit sets, so that every
value deploygen owns (sessions, hosts, the database and its connections) wins as it does on the
server. The rendered unit's DJANGO_SETTINGS_MODULE names this module. Then the views, the URLs
and the WSGI application, which gunicorn gets from `wsgi_application()` (a factory, so that
Django importing this module as its settings does not build a second one).

As the Flask probe: a PostgreSQL error comes back as 503 with its SQLSTATE (Django wraps
psycopg's error, which carries it), so that the drill tells "PostgreSQL gave up" from
"gunicorn killed the worker" (500/502 without this body) and "nginx gave up" (504).
Markers in DRILL_STATE_DIR tell whether a request is still running after the client was answered,
and which workers have loaded the app (PID.ready).
"""

import os
import time
from pathlib import Path

# -- the project's own settings ------------------------------------------------------------
ROOT_URLCONF = __name__
INSTALLED_APPS = ["django.contrib.sessions"]
MIDDLEWARE = [
    f"{__name__}.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
USE_TZ = True

# The last line of the project's settings, as README asks: deploygen's values win.
from deploygen_settings import *

# -- the rest of the project ---------------------------------------------------------------
from django.db import Error as DatabaseError
from django.db import connection, transaction
from django.http import JsonResponse, StreamingHttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

STATE = Path(os.environ["DRILL_STATE_DIR"])


def _mark(request, what: str) -> None:
    tag = request.GET.get("id")
    if tag:
        (STATE / f"{tag}.{what}").write_text(str(os.getpid()))


class ProbeMiddleware:
    """Outermost: marks each request's start and end, and answers a PostgreSQL error with 503."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        _mark(request, "start")
        response = self.get_response(request)
        _mark(request, "end")
        return response

    def process_exception(self, request, exc):
        if not isinstance(exc, DatabaseError):
            return None
        cause = exc.__cause__ or exc
        sqlstate = getattr(cause, "sqlstate", None) or getattr(getattr(cause, "diag", None), "sqlstate", None)
        return JsonResponse({"layer": "postgres", "sqlstate": sqlstate, "error": str(exc).splitlines()[0]},
                            status=503)


def _seconds(request) -> float:
    return float(request.GET.get("s", "0"))


def _answer() -> JsonResponse:
    return JsonResponse({"layer": "app", "pid": os.getpid()})


@csrf_exempt  # the keepalive scenario POSTs without a token
def sleep(request):
    time.sleep(_seconds(request))
    return _answer()


def db_sleep(request):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [_seconds(request)])
    return _answer()


def lock(request):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT id FROM drill_lock WHERE id = 1 FOR UPDATE")
    return _answer()


def idle_tx(request):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        time.sleep(_seconds(request))
        cursor.execute("SELECT 1")
    return _answer()


def stream(request):
    total = _seconds(request)

    def chunks():
        for _ in range(10):
            time.sleep(total / 10)
            yield b"." * 64

    return StreamingHttpResponse(chunks(), content_type="text/plain")


def session_view(request):
    if "n" not in request.session:
        request.session["n"] = os.getpid()
    time.sleep(min(float(request.GET.get("s", 0)), 1))  # holds the worker so that parallel requests spread
    return JsonResponse({"layer": "app", "pid": os.getpid(), "first_pid": request.session["n"]})


urlpatterns = [
    path("sleep", sleep),
    path("db-sleep", db_sleep),
    path("lock", lock),
    path("idle-tx", idle_tx),
    path("stream", stream),
    path("session", session_view),
]


def wsgi_application():
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
    # This worker takes requests from now on (the drill sends none to a worker still setting Django up).
    (STATE / f"{os.getpid()}.ready").write_text("")
    return application
