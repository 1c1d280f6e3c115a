-- PostgreSQL timeouts for dokon (run as postgres)
ALTER DATABASE dokon_db SET statement_timeout = '300s';
ALTER ROLE dokon SET lock_timeout TO '30s';
/* the app's own role, only in its database */
ALTER ROLE "dokon" IN DATABASE "dokon_db"
    SET statement_timeout = 120000;
ALTER ROLE other SET statement_timeout = '1s';
SELECT 1;
