-- Written by deploygen 0.1.0 from analytics.yaml: edit the site file and render again,
-- not this file (postgres-sql).
-- Run as a superuser, before postgres.sql: psql -v ON_ERROR_STOP=1 -d postgres -f THIS_FILE.
-- It creates the role and its database only when they are missing, so a second run changes
-- nothing, and it never alters a role or a database that exists. No password: set one by
-- hand (psql's \password), so that it never lands in a file.
-- Two hosts of one site may run it at once against a shared server: both would see the role
-- missing and the second CREATE fail (duplicate key). The advisory lock makes them take turns;
-- it is the session's, held until psql exits (\gset: nothing printed).
SELECT pg_advisory_lock(hashtext('deploygen-bootstrap'))\gset
-- CREATE DATABASE cannot run in a DO block: each SELECT builds the statement, or nothing when
-- the object exists, and psql's \gexec runs what it built.
SELECT format('CREATE ROLE %I LOGIN', 'analytics')
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'analytics')\gexec
SELECT format('CREATE DATABASE %I OWNER %I', 'analytics', 'analytics')
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = 'analytics')\gexec
