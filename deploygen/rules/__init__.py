"""The rule catalogue: one explicit registry, sorted by code."""

from __future__ import annotations

from deploygen.rules.base import Rule
from deploygen.rules.dg101_proxy_timeout_below_worker_timeout import ProxyTimeoutBelowWorkerTimeout
from deploygen.rules.dg102_proxy_timeout_below_statement_timeout import ProxyTimeoutBelowStatementTimeout
from deploygen.rules.dg111_upstream_keepalive_outlives_worker import UpstreamKeepaliveOutlivesWorker
from deploygen.rules.dg201_statement_outlives_worker import StatementOutlivesWorker
from deploygen.rules.dg202_lock_timeout_not_below_statement import LockTimeoutNotBelowStatement
from deploygen.rules.dg301_stop_timeout_cuts_graceful_shutdown import StopTimeoutCutsGracefulShutdown
from deploygen.rules.dg501_secure_cookie_without_tls import SecureCookieWithoutTls
from deploygen.rules.dg901_duplicate_site_name import DuplicateSiteName
from deploygen.rules.dg902_duplicate_bind import DuplicateBind
from deploygen.rules.dg903_duplicate_domain import DuplicateDomain
from deploygen.rules.dg904_duplicate_database_role import DuplicateDatabaseRole

RULES: tuple[type[Rule], ...] = (
    ProxyTimeoutBelowWorkerTimeout,
    ProxyTimeoutBelowStatementTimeout,
    UpstreamKeepaliveOutlivesWorker,
    StatementOutlivesWorker,
    LockTimeoutNotBelowStatement,
    StopTimeoutCutsGracefulShutdown,
    SecureCookieWithoutTls,
    DuplicateSiteName,
    DuplicateBind,
    DuplicateDomain,
    DuplicateDatabaseRole,
)

BY_CODE: dict[str, type[Rule]] = {rule.code: rule for rule in RULES}
