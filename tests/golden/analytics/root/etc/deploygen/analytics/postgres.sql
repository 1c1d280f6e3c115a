-- Written by deploygen 0.1.0 from analytics.yaml: edit the site file and render again,
-- not this file (postgres-sql).
-- Run as a superuser: psql -v ON_ERROR_STOP=1 -f THIS_FILE. Safe to run again.
-- The settings apply to new connections of "analytics" in "analytics": restart the app after.
BEGIN;
ALTER ROLE "analytics" IN DATABASE "analytics" SET statement_timeout = '54s';  -- derived: gunicorn.timeout - min(10s, gunicorn.timeout/10)
ALTER ROLE "analytics" IN DATABASE "analytics" SET lock_timeout = '10s';  -- derived: min(10s, statement_timeout/2)
ALTER ROLE "analytics" IN DATABASE "analytics" SET idle_in_transaction_session_timeout = '60s';  -- derived: min(60s, timeouts.request)
ALTER ROLE "analytics" IN DATABASE "analytics" SET client_connection_check_interval = '5s';  -- default: 5s
ALTER ROLE "analytics" IN DATABASE "analytics" RESET idle_session_timeout;
COMMIT;
