"""nginx: the outermost layer, which must outwait what it proxies to."""

from __future__ import annotations

from deploygen.derive.deriver import SECOND, Deriver, margin
from deploygen.derive.gunicorn import HONOURS_KEEPALIVE
from deploygen.sitefile.duration import Duration
from deploygen.sitefile.system_accounts import is_system_account


def derive_nginx(d: Deriver, upstream_read_timeout: str = "nginx.proxy_read_timeout") -> None:
    """The client side of nginx, common to every kind; `upstream_read_timeout` is the key of how
    long it waits for the app (the kind's derive_upstream put it), which the client also gets."""
    site = d.loaded.site
    n = site.timeouts.nginx
    d.put("nginx.server_name", list(site.domains), ("domains",), lambda: None, "")
    read = d.value(upstream_read_timeout)
    name = upstream_read_timeout.split(".", 1)[1]
    d.put("nginx.send_timeout", n.send_timeout, ("timeouts", "nginx", "send_timeout"),
          lambda: read, f"= {name}: the client gets the same patience", upstream_read_timeout)
    for name in ("client_header_timeout", "client_body_timeout"):
        d.put(f"nginx.{name}", getattr(n, name), ("timeouts", "nginx", name),
              lambda: Duration.seconds_(60), "60s (nginx's default)")
    d.put("nginx.keepalive_timeout", n.keepalive_timeout, ("timeouts", "nginx", "keepalive_timeout"),
          lambda: Duration.seconds_(75), "75s (nginx's default)")
    d.put("nginx.client_max_body_size", site.nginx.client_max_body_size,
          ("nginx", "client_max_body_size"), lambda: "1m", "1m (nginx's default)")


def derive_nginx_proxy(d: Deriver) -> None:
    """What nginx speaks to gunicorn: proxy_* timeouts above gunicorn's, upstream keepalive."""
    site = d.loaded.site
    t = site.timeouts
    timeout = d.value("gunicorn.timeout")
    threads = d.value("gunicorn.threads")
    keepalive = d.value("gunicorn.keepalive")
    n = t.nginx
    read = d.put(
        "nginx.proxy_read_timeout", n.proxy_read_timeout, ("timeouts", "nginx", "proxy_read_timeout"),
        lambda: timeout + margin(timeout),
        "gunicorn.timeout + min(10s, gunicorn.timeout/10): gunicorn answers before nginx gives up",
        "gunicorn.timeout")
    d.put("nginx.proxy_send_timeout", n.proxy_send_timeout, ("timeouts", "nginx", "proxy_send_timeout"),
          lambda: read, "= proxy_read_timeout", "nginx.proxy_read_timeout")
    d.put("nginx.proxy_connect_timeout", n.proxy_connect_timeout, ("timeouts", "nginx", "proxy_connect_timeout"),
          lambda: min(Duration.seconds_(5), read),
          "min(5s, proxy_read_timeout): a local gunicorn accepts at once; fail fast when it is down",
          "nginx.proxy_read_timeout")
    d.put("nginx.proxy_buffering", site.nginx.proxy_buffering, ("nginx", "proxy_buffering"),
          lambda: True, "on (nginx's default): nginx takes the response, slow clients cost no worker")
    if d.value("gunicorn.worker_class") in HONOURS_KEEPALIVE:
        workers = d.value("gunicorn.workers")
        d.put("nginx.upstream.keepalive", site.nginx.upstream.keepalive, ("nginx", "upstream", "keepalive"),
              lambda: min(64, max(2, workers * threads)),
              "gunicorn.workers x gunicorn.threads (2..64): one idle connection per request slot",
              "gunicorn.worker_class")
    else:
        d.put("nginx.upstream.keepalive", site.nginx.upstream.keepalive, ("nginx", "upstream", "keepalive"),
              lambda: 0, "none for sync workers: they close every connection",
              "gunicorn.worker_class")
    keeps = bool(d.value("nginx.upstream.keepalive"))
    d.put("nginx.proxy_http_version", None, ("nginx",), lambda: "1.1" if keeps else "1.0",
          "1.1 with upstream keepalive (nginx speaks 1.0 to backends by default)", "nginx.upstream.keepalive")
    d.put("nginx.proxy_set_header.Connection", None, ("nginx",), lambda: "" if keeps else None,
          "empty with upstream keepalive, else nginx's `close`", "nginx.upstream.keepalive")
    d.put("nginx.proxy_set_header.X-Forwarded-Proto", None, ("nginx",), lambda: "$scheme",
          "$scheme: gunicorn learns the request came over HTTPS", "deploygen.tls")
    if "nginx.upstream.keepalive_timeout" not in d.settings:
        d.put("nginx.upstream.keepalive_timeout", n.upstream.keepalive_timeout,
              ("timeouts", "nginx", "upstream", "keepalive_timeout"),
              lambda: keepalive - min(SECOND, keepalive.scaled(1, 2)),
              "gunicorn.keepalive - 1s: nginx drops an idle connection before gunicorn closes it "
              "(the intermittent 502)", "gunicorn.keepalive")


# The user Debian's nginx.conf runs nginx's workers as (`user www-data;`), and a fleet host's default.
DEBIAN_NGINX_USER = "www-data"


def derive_nginx_user(d: Deriver, nginx_user: str | None = None, joins_group: bool = True) -> None:
    """Who nginx's workers run as (the fleet host's `nginx_user`, else Debian's www-data) and the
    groups they run with: the user's own (nginx's `user NAME;` takes the group of that name) and,
    for a socket, the app's group, which deploygen's first install puts the user in
    (render.install: InstallPlan.join_group), so that it may enter /run/NAME (RuntimeDirectoryMode=0750)."""
    site = d.loaded.site
    app = site.app
    user = nginx_user or DEBIAN_NGINX_USER
    d.put("nginx.user", None, ("server", "bind"), lambda: user,
          f"{user}: the fleet host's nginx_user" if nginx_user else
          f"{user}: Debian's nginx.conf (`user {user};`); a fleet host's nginx_user names another")
    groups = [user]
    if not joins_group:
        how = f"{user}'s own group: the socket is {user}'s (php-fpm's listen.owner)"
    elif not site.server.bind.is_unix:
        how = f"{user}'s own group: a TCP bind, so the first install adds {user} to no group"
    elif app.user == user:
        how = f"{user}'s own group: nginx runs as the app's user, the socket's owner"
    elif app.group == user:
        how = f"{user}'s own group, which is the app's group"
    elif is_system_account(app.group):
        # The first install joins only a group it creates: never root's, nor www-data's.
        how = f"{user}'s own group: the first install adds {user} to no group the system ships ({app.group})"
    else:
        groups.append(app.group)
        how = f"first install: usermod -aG {app.group} {user} (nginx's `user {user};` adds group {user})"
    d.put("nginx.user.groups", None, ("app", "group"), lambda: groups, how)
