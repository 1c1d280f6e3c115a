from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class NoStableSecretKey(Rule):
    """Several processes and no shared source for SECRET_KEY.

    ## What it checks
    A site with more than one gunicorn worker and no `app.secrets_file`, the
    file the unit loads `FLASK_SECRET_KEY` from.

    ## Why it is bad
    An app that falls back to `os.urandom()` when no key is configured gets a
    different key in every worker. A session cookie signed by one worker is
    rejected by the next: logins work for one request in N and vanish at
    random, and every restart logs everyone out.

    ## Example
    ```yaml
    app: {framework: flask, wsgi: "app:app", root: /srv/shop, venv: /srv/shop/venv}
    server: {bind: "127.0.0.1:8001", workers: 4}
    # no app.secrets_file
    ```

    ## Fix
    Create a secrets file holding `FLASK_SECRET_KEY` (README, "Installing on
    a server") and name it in `app.secrets_file`.
    """

    code = "DG504"
    name = "no-stable-secret-key"
    severity = "error"
    kinds = frozenset({"flask"})  # Flask's: without its secrets file a Django site never starts
    keys = ("gunicorn.workers", "deploygen.secrets_file")
    summary = "several workers and no secrets_file to share SECRET_KEY"

    def check(self, site: SiteContext) -> Iterator[Finding]:
        workers = site.effective["gunicorn.workers"]
        if workers.value > 1 and not site.effective.value("deploygen.secrets_file"):
            yield self.finding(site, workers, "and no app.secrets_file", None,
                               "no shared SECRET_KEY: each worker may sign sessions with its own key, and "
                               "logins vanish at random")
