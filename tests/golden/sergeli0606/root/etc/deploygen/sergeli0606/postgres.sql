-- Written by deploygen 0.1.0 from sergeli0606.yaml: edit the site file and render again,
-- not this file (postgres-sql).
-- Run as a superuser: psql -v ON_ERROR_STOP=1 -f THIS_FILE. Safe to run again.
-- The settings apply to new connections of "sergeli0606" in "sergeli0606_db": restart the app after.
BEGIN;
ALTER ROLE "sergeli0606" IN DATABASE "sergeli0606_db" SET statement_timeout = '290s';  -- derived: gunicorn.timeout - min(10s, gunicorn.timeout/10)
ALTER ROLE "sergeli0606" IN DATABASE "sergeli0606_db" SET lock_timeout = '10s';  -- derived: min(10s, statement_timeout/2)
ALTER ROLE "sergeli0606" IN DATABASE "sergeli0606_db" SET idle_in_transaction_session_timeout = '60s';  -- sergeli0606.yaml: timeouts.postgres.idle_in_transaction_session_timeout
ALTER ROLE "sergeli0606" IN DATABASE "sergeli0606_db" SET client_connection_check_interval = '5s';  -- default: 5s
ALTER ROLE "sergeli0606" IN DATABASE "sergeli0606_db" RESET idle_session_timeout;
COMMIT;
