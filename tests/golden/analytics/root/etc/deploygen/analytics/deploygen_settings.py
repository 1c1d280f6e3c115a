# Written by deploygen 0.1.0 from analytics.yaml: edit the site file and render again,
# not this file (django-settings).
# The Django settings deploygen owns. The project's settings import it last:
#     from deploygen_settings import *  # noqa: F403
# so every value here wins. Values are Python literals, never strings Django would
# misread; secrets come from the environment the unit loads from the secrets file.
import os

DEBUG = False  # default: false
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]

# -- hosts and the proxy in front -------------------------------------------------
ALLOWED_HOSTS = ["analytics.example.org"]  # default: = domains (*.x as .x)
CSRF_TRUSTED_ORIGINS = ["https://analytics.example.org"]  # derived: https://ALLOWED_HOSTS
USE_X_FORWARDED_HOST = False  # default: false (Django's default)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")  # derived: the X-Forwarded-Proto nginx sets ($scheme)
SECURE_SSL_REDIRECT = True  # derived: = tls is set
SECURE_HSTS_SECONDS = 31536000  # derived: 1y with tls (browsers then refuse plain HTTP), off without
SECURE_HSTS_INCLUDE_SUBDOMAINS = False  # default: false
SECURE_HSTS_PRELOAD = False  # default: false

# -- sessions ------------------------------------------------------------------------
SESSION_ENGINE = "django.contrib.sessions.backends.db"  # derived: Django's db engine (session.store db)
SESSION_COOKIE_AGE = 1800  # analytics.yaml: session.idle_timeout
SESSION_SAVE_EVERY_REQUEST = True  # derived: true with an idle timeout
SESSION_EXPIRE_AT_BROWSER_CLOSE = False  # default: false (Django's default)
SESSION_COOKIE_NAME = "sessionid"  # default: sessionid (Django's default)
SESSION_COOKIE_DOMAIN = None  # default: host-only (Django's default)
SESSION_COOKIE_SECURE = True  # derived: = tls is set
SESSION_COOKIE_HTTPONLY = True  # default: true (Django's default)
SESSION_COOKIE_SAMESITE = "Lax"  # default: Lax (Django's default)
CSRF_COOKIE_SECURE = True  # derived: = SESSION_COOKIE_SECURE

# -- the database ------------------------------------------------------------------
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "analytics",
        "USER": "analytics",
        "PASSWORD": os.environ.get("DATABASE_PASSWORD", ""),
        "HOST": "localhost",
        "CONN_MAX_AGE": 1800,  # default: 30m
        "CONN_HEALTH_CHECKS": True,  # default: true
    },
}
