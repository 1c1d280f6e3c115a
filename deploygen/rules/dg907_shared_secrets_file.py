from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import SiteContext
from deploygen.rules.collision import CollisionRule

KEY = "systemd.EnvironmentFile"


def _given_folders(name: str) -> tuple[tuple[str, str], ...]:
    """The folders deploygen gives to the site NAME, and who writes in them."""
    return ((f"/etc/deploygen/{name}", "deploygen replaces its files on every render of that site"),
            (f"/run/{name}", "that site's unit owns it (its user writes there) and deletes it on every stop"),
            (f"/var/lib/{name}", "that site's unit owns it: its user writes there"))


class SharedSecretsFile(CollisionRule):
    """Two sites load the same secrets file, or one loads it from another site's folder.

    ## What it checks
    Every site's `app.secrets_file` is its own: no two sites named in one
    call write the same path, and none points into a folder deploygen gives
    to another of those sites (`/etc/deploygen/NAME/`, `/run/NAME/`,
    `/var/lib/NAME/`).

    ## Why it is bad
    systemd reads `EnvironmentFile=` as root, before it drops to the site's
    user, so the file's owner and mode do not stop one site's unit from
    loading another site's secrets: both apps get the same `FLASK_SECRET_KEY`
    and `DATABASE_URL`. Nothing fails or warns. A session cookie one app
    signs is valid on the other (a user logged in on one site is logged in on
    the other as whoever the cookie's user id is there), anyone who gets the
    key out of one app can forge sessions for both, and one of the two apps
    reads and writes the other site's database as its role. A file under
    another site's `/run/NAME` or `/var/lib/NAME` is worse: that site's user
    owns the folder, so its app can write the variables this site's unit
    starts with, and `/run/NAME` is emptied whenever that site stops.

    ## Example
    ```yaml
    # sites/shop.yaml
    app:
      secrets_file: /etc/shop/secrets.env
    # sites/blog.yaml, copied from shop.yaml
    app:
      secrets_file: /etc/shop/secrets.env   # or /var/lib/shop/secrets.env
    ```

    ## Fix
    Give each site its own secrets file (`/etc/NAME/secrets.env`, mode
    0600, owned by root: systemd reads it as root) with its own
    `FLASK_SECRET_KEY` and a `DATABASE_URL` naming its own database and
    role, and write that path in the site's `app.secrets_file`. The site
    that gets a new file gets a new key, so its users are logged out once.
    The other site's key and database password were readable by the wrong
    app: change them too.
    """

    code = "DG907"
    name = "shared-secrets-file"
    severity = "error"
    summary = "two sites with the same secrets file, or one in another site's folder"
    keys = (KEY,)
    what = "secrets file"
    consequence = ("each app gets the other's FLASK_SECRET_KEY and DATABASE_URL: either can sign the other's "
                   "sessions and reach the other's database")

    def claims(self, site: SiteContext):
        files = site.effective[KEY]
        for index, path in enumerate(files.value or ()):
            yield path, KEY, files.provenance.item(index)

    def check_all(self, sites: list[SiteContext]) -> Iterator[Finding]:
        yield from super().check_all(sites)
        shared = Counter((site.machine, value) for site in sites for value, _, _ in self.claims(site))
        # A path lies in at most one given folder, whose NAME is its next component: look the
        # site up by name instead of trying every other site's folders (a 1,000-site render
        # spent 3.7 s here).
        by_name: dict[tuple[str, str], SiteContext] = {}
        for other in sites:
            by_name.setdefault((other.machine, other.name), other)
        for site in sites:
            for path, key, location in self.claims(site):
                if shared[site.machine, path] > 1:
                    continue  # reported above, naming the other site
                found = _owner(path, site.machine, by_name)
                if found is None or found[0].name == site.name:
                    continue  # a site's own folders; two sites of one name are DG901
                other, folder, owner = found
                yield Finding(
                    location.file, location.line, location.column, self.code, self.severity,
                    site.name,
                    f"secrets file {path} is in {folder}, which deploygen gives to {other.name} "
                    f"({other.loaded.file}); {owner}: this site's unit loads whatever is there "
                    f"as its FLASK_SECRET_KEY and DATABASE_URL",
                    f"{key}={path} in {folder}", {key: path})


def _owner(path: str, machine: str, by_name: dict[tuple[str, str], SiteContext]) -> tuple[SiteContext, str, str] | None:
    """The site on `machine` whose given folder holds `path`, the folder, and who writes in it."""
    for prefix in ("/etc/deploygen/", "/run/", "/var/lib/"):
        if path.startswith(prefix):
            name, slash, _ = path[len(prefix):].partition("/")
            other = by_name.get((machine, name)) if slash else None
            if other is not None:
                for folder, owner in _given_folders(name):
                    if folder == prefix + name:
                        return other, folder, owner
    return None
