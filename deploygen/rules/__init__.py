"""The rule catalogue: one explicit registry, sorted by code.

Codes are grouped by the layers they relate: DG0xx deploygen's own (a suppression that
suppresses nothing), DG1xx nginx and gunicorn,
DG2xx PostgreSQL and the worker, DG3xx systemd, DG4xx connection pools,
DG5xx sessions and cookies, DG6xx proxy headers and buffering, DG7xx what the service may do
(privileges), DG8xx PHP-FPM and PHP, DG9xx collisions between sites.
"""

from __future__ import annotations

from deploygen.rules.base import Rule
from deploygen.rules.dg001_unused_suppression import UnusedSuppression
from deploygen.rules.dg101_proxy_timeout_below_worker_timeout import ProxyTimeoutBelowWorkerTimeout
from deploygen.rules.dg102_proxy_timeout_below_statement_timeout import ProxyTimeoutBelowStatementTimeout
from deploygen.rules.dg103_proxy_connect_timeout_above_cap import ProxyConnectTimeoutAboveCap
from deploygen.rules.dg104_request_unbounded_with_async_workers import RequestUnboundedWithAsyncWorkers
from deploygen.rules.dg105_worker_timeout_below_request_budget import WorkerTimeoutBelowRequestBudget
from deploygen.rules.dg106_upstream_read_timeout_below_request_budget import UpstreamReadTimeoutBelowRequestBudget
from deploygen.rules.dg111_upstream_keepalive_outlives_worker import UpstreamKeepaliveOutlivesWorker
from deploygen.rules.dg112_upstream_keepalive_with_sync_workers import UpstreamKeepaliveWithSyncWorkers
from deploygen.rules.dg113_upstream_keepalive_without_http11 import UpstreamKeepaliveWithoutHttp11
from deploygen.rules.dg201_statement_outlives_worker import StatementOutlivesWorker
from deploygen.rules.dg202_lock_timeout_not_below_statement import LockTimeoutNotBelowStatement
from deploygen.rules.dg203_idle_transaction_above_budget import IdleTransactionAboveBudget
from deploygen.rules.dg204_setting_unknown_to_server import SettingUnknownToServer
from deploygen.rules.dg301_stop_timeout_cuts_graceful_shutdown import StopTimeoutCutsGracefulShutdown
from deploygen.rules.dg401_pool_recycle_above_idle_session_timeout import PoolRecycleAboveIdleSessionTimeout
from deploygen.rules.dg402_connection_budget_exceeded import ConnectionBudgetExceeded
from deploygen.rules.dg403_pool_timeout_above_budget import PoolTimeoutAboveBudget
from deploygen.rules.dg404_threads_exceed_pool import ThreadsExceedPool
from deploygen.rules.dg405_persistent_connections_with_pool import PersistentConnectionsWithPool
from deploygen.rules.dg501_secure_cookie_without_tls import SecureCookieWithoutTls
from deploygen.rules.dg502_tls_without_secure_cookie import TlsWithoutSecureCookie
from deploygen.rules.dg503_remember_me_long_lifetime import RememberMeLongLifetime
from deploygen.rules.dg504_no_stable_secret_key import NoStableSecretKey
from deploygen.rules.dg505_redis_store_without_secrets import RedisStoreWithoutSecrets
from deploygen.rules.dg506_sliding_session_never_refreshed import SlidingSessionNeverRefreshed
from deploygen.rules.dg507_redis_timeout_without_health_check import RedisTimeoutWithoutHealthCheck
from deploygen.rules.dg508_idle_timeout_above_lifetime import IdleTimeoutAboveLifetime
from deploygen.rules.dg509_cleanup_interval_above_lifetime import CleanupIntervalAboveLifetime
from deploygen.rules.dg510_remember_cookie_shorter_than_session import RememberCookieShorterThanSession
from deploygen.rules.dg511_session_store_loses_sessions import SessionStoreLosesSessions
from deploygen.rules.dg512_stored_sessions_never_cleaned import StoredSessionsNeverCleaned
from deploygen.rules.dg601_forwarded_headers_not_trusted import ForwardedHeadersNotTrusted
from deploygen.rules.dg602_sync_workers_without_buffering import SyncWorkersWithoutBuffering
from deploygen.rules.dg603_forwarded_proto_not_sent import ForwardedProtoNotSent
from deploygen.rules.dg604_ssl_redirect_without_forwarded_scheme import SslRedirectWithoutForwardedScheme
from deploygen.rules.dg605_domain_not_in_allowed_hosts import DomainNotInAllowedHosts
from deploygen.rules.dg701_service_runs_as_root import ServiceRunsAsRoot
from deploygen.rules.dg702_socket_in_tmp import SocketInTmp
from deploygen.rules.dg703_nginx_cannot_reach_socket import NginxCannotReachSocket
from deploygen.rules.dg801_fastcgi_timeout_below_terminate_timeout import FastcgiTimeoutBelowTerminateTimeout
from deploygen.rules.dg802_statement_outlives_terminate_timeout import StatementOutlivesTerminateTimeout
from deploygen.rules.dg803_request_terminate_timeout_off import RequestTerminateTimeoutOff
from deploygen.rules.dg804_process_control_timeout_below_terminate import ProcessControlTimeoutBelowTerminate
from deploygen.rules.dg805_stop_timeout_below_process_control import StopTimeoutBelowProcessControl
from deploygen.rules.dg806_php_fpm_stops_with_sigterm import PhpFpmStopsWithSigterm
from deploygen.rules.dg807_slowlog_never_written import SlowlogNeverWritten
from deploygen.rules.dg808_pm_counts_inconsistent import PmCountsInconsistent
from deploygen.rules.dg809_session_lifetime_cleaner_cannot_see import SessionLifetimeCleanerCannotSee
from deploygen.rules.dg810_cookie_lifetime_makes_idle_absolute import CookieLifetimeMakesIdleAbsolute
from deploygen.rules.dg811_session_strict_mode_off import SessionStrictModeOff
from deploygen.rules.dg901_duplicate_site_name import DuplicateSiteName
from deploygen.rules.dg902_duplicate_bind import DuplicateBind
from deploygen.rules.dg903_duplicate_domain import DuplicateDomain
from deploygen.rules.dg904_duplicate_database_role import DuplicateDatabaseRole
from deploygen.rules.dg905_shared_session_cookie import SharedSessionCookie
from deploygen.rules.dg906_shared_session_directory import SharedSessionDirectory
from deploygen.rules.dg907_shared_secrets_file import SharedSecretsFile
from deploygen.rules.dg908_php_fpm_master_settings_differ import PhpFpmMasterSettingsDiffer
from deploygen.rules.dg909_shared_app_user import SharedAppUser

RULES: tuple[type[Rule], ...] = (
    UnusedSuppression,
    ProxyTimeoutBelowWorkerTimeout,
    ProxyTimeoutBelowStatementTimeout,
    ProxyConnectTimeoutAboveCap,
    RequestUnboundedWithAsyncWorkers,
    WorkerTimeoutBelowRequestBudget,
    UpstreamReadTimeoutBelowRequestBudget,
    UpstreamKeepaliveOutlivesWorker,
    UpstreamKeepaliveWithSyncWorkers,
    UpstreamKeepaliveWithoutHttp11,
    StatementOutlivesWorker,
    LockTimeoutNotBelowStatement,
    IdleTransactionAboveBudget,
    SettingUnknownToServer,
    StopTimeoutCutsGracefulShutdown,
    PoolRecycleAboveIdleSessionTimeout,
    ConnectionBudgetExceeded,
    PoolTimeoutAboveBudget,
    ThreadsExceedPool,
    PersistentConnectionsWithPool,
    SecureCookieWithoutTls,
    TlsWithoutSecureCookie,
    RememberMeLongLifetime,
    NoStableSecretKey,
    RedisStoreWithoutSecrets,
    SlidingSessionNeverRefreshed,
    RedisTimeoutWithoutHealthCheck,
    IdleTimeoutAboveLifetime,
    CleanupIntervalAboveLifetime,
    RememberCookieShorterThanSession,
    SessionStoreLosesSessions,
    StoredSessionsNeverCleaned,
    ForwardedHeadersNotTrusted,
    SyncWorkersWithoutBuffering,
    ForwardedProtoNotSent,
    SslRedirectWithoutForwardedScheme,
    DomainNotInAllowedHosts,
    ServiceRunsAsRoot,
    SocketInTmp,
    NginxCannotReachSocket,
    FastcgiTimeoutBelowTerminateTimeout,
    StatementOutlivesTerminateTimeout,
    RequestTerminateTimeoutOff,
    ProcessControlTimeoutBelowTerminate,
    StopTimeoutBelowProcessControl,
    PhpFpmStopsWithSigterm,
    SlowlogNeverWritten,
    PmCountsInconsistent,
    SessionLifetimeCleanerCannotSee,
    CookieLifetimeMakesIdleAbsolute,
    SessionStrictModeOff,
    DuplicateSiteName,
    DuplicateBind,
    DuplicateDomain,
    DuplicateDatabaseRole,
    SharedSessionCookie,
    SharedSessionDirectory,
    SharedSecretsFile,
    PhpFpmMasterSettingsDiffer,
    SharedAppUser,
)

BY_CODE: dict[str, type[Rule]] = {rule.code: rule for rule in RULES}
