-- Issue 13: newsflow_analyst must not be able to disturb ingestion or fill the disk.
--
-- PostgreSQL grants every role, through PUBLIC, TEMP on each database and EXECUTE on the
-- built-in functions. For an analyst that meant: temporary tables of any size; large objects
-- (lo_from_bytea ...) left behind after the session; advisory locks, so a session holding the
-- feed lock (store.FEED_LOCK_CLASS) or a host lock (tasks.host_lock) makes every ingest of
-- that feed or host wait; and pg_notify on newsflow_articles, which `newsflow tail` follows.
-- This migration takes those from PUBLIC in this database and gives the functions newsflow
-- itself calls back to the roles that run newsflow: newsflow_loader and the database owner.
--
-- What a migration cannot take away (docs/analysts.md, "What the analyst role cannot do"):
-- `SET statement_timeout` (any role may change its own settings, so the role's timeout is a
-- default; ops.cancel_analyst_overruns() enforces it from outside), and the NOTIFY statement,
-- which needs no privilege (so consumers of newsflow_articles ignore malformed payloads).
--
-- Only the owner of the pg_catalog functions (the bootstrap superuser) may change their
-- privileges; a superuser acts as that owner. A database owner who is not a superuser revokes
-- TEMP here, and the function privileges are left, with a notice, until a superuser runs
-- SELECT ops.grant_newsflow_roles(), which now ends by calling ops.lockdown_newsflow_roles().
-- Everything below is idempotent: running it again changes nothing.

CREATE OR REPLACE FUNCTION ops.lockdown_newsflow_roles() RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    -- Every overload of each, whatever the server version.
    advisory constant text[] := ARRAY[
        'pg_advisory_lock', 'pg_advisory_lock_shared',
        'pg_try_advisory_lock', 'pg_try_advisory_lock_shared',
        'pg_advisory_xact_lock', 'pg_advisory_xact_lock_shared',
        'pg_try_advisory_xact_lock', 'pg_try_advisory_xact_lock_shared',
        'pg_advisory_unlock', 'pg_advisory_unlock_shared', 'pg_advisory_unlock_all'];
    notify constant text[] := ARRAY['pg_notify'];
    -- The whole large-object interface: newsflow has no use for it, and a large object
    -- outlives the session that made it. lo_import and lo_export are superuser-only anyway.
    large_object constant text[] := ARRAY[
        'lo_creat', 'lo_create', 'lo_from_bytea', 'lo_import', 'lo_export', 'lo_put', 'lowrite',
        'lo_truncate', 'lo_truncate64', 'lo_unlink', 'lo_open', 'lo_close', 'loread', 'lo_get',
        'lo_lseek', 'lo_lseek64', 'lo_tell', 'lo_tell64'];
    me pg_roles%ROWTYPE;
    owner_name name;
    owner_is_super boolean;
    fn regprocedure;
    grantee text;
BEGIN
    SELECT * INTO me FROM pg_roles WHERE rolname = current_user;
    SELECT r.rolname, r.rolsuper INTO owner_name, owner_is_super
    FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE d.datname = current_database();

    -- TEMP: the database owner (or a superuser) may revoke it. The owner keeps it, as an owner.
    IF me.rolsuper OR pg_has_role(current_user, owner_name, 'MEMBER') THEN
        EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    ELSE
        RAISE NOTICE '% does not own database %: TEMP is still granted to PUBLIC there',
            current_user, current_database();
    END IF;

    IF NOT me.rolsuper THEN
        RAISE NOTICE 'only a superuser may revoke EXECUTE on built-in functions: advisory locks, '
            'pg_notify and large objects stay open to every role in database % until a superuser '
            'runs SELECT ops.grant_newsflow_roles()', current_database();
        RETURN;
    END IF;

    FOR fn IN
        SELECT p.oid::regprocedure FROM pg_proc p
        WHERE p.pronamespace = 'pg_catalog'::regnamespace
          AND p.proname = ANY(advisory || notify || large_object)
        ORDER BY 1
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', fn);
    END LOOP;

    -- Given back to the roles that run newsflow: the loader (feed and host locks in store.py
    -- and tasks.py, pg_notify in store.notify_stored) and the database owner, who also takes
    -- the migration lock (db.MIGRATION_LOCK). A superuser needs no grant.
    FOR grantee IN
        SELECT rolname FROM pg_roles
        WHERE NOT rolsuper
          AND (rolname = 'newsflow_loader' OR rolname = owner_name)
    LOOP
        FOR fn IN
            SELECT p.oid::regprocedure FROM pg_proc p
            WHERE p.pronamespace = 'pg_catalog'::regnamespace
              AND p.proname = ANY(advisory || notify)
            ORDER BY 1
        LOOP
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', fn, grantee);
        END LOOP;
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION ops.lockdown_newsflow_roles() IS
    'Revokes TEMP on this database and EXECUTE on the advisory-lock, pg_notify and large-object '
    'functions from PUBLIC, and grants the advisory-lock functions and pg_notify back to '
    'newsflow_loader and the database owner. Function privileges need a superuser. Migration 005 '
    'runs it, and so does ops.grant_newsflow_roles().';
REVOKE ALL ON FUNCTION ops.lockdown_newsflow_roles() FROM PUBLIC;

-- ops.grant_newsflow_roles() as in 003, ending with the lock-down, so that running it later as a
-- superuser (after the roles were created, or to fix up a database migrated by an owner who is
-- not a superuser) does both.
CREATE OR REPLACE FUNCTION ops.grant_newsflow_roles() RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    may_create_roles boolean;
BEGIN
    SELECT rolsuper OR rolcreaterole INTO may_create_roles FROM pg_roles WHERE rolname = current_user;

    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'newsflow_analyst') THEN
        IF may_create_roles THEN
            BEGIN
                CREATE ROLE newsflow_analyst LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
                ALTER ROLE newsflow_analyst SET statement_timeout = '2min';
                ALTER ROLE newsflow_analyst SET idle_in_transaction_session_timeout = '10min';
                COMMENT ON ROLE newsflow_analyst IS
                    'newsflow analysts: read-only access to the newsflow tables and views, queries time out.';
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created concurrently by another database's migration
            END;
        ELSE
            RAISE NOTICE 'role newsflow_analyst does not exist and % may not create roles: not created',
                current_user;
        END IF;
    END IF;

    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'newsflow_loader') THEN
        IF may_create_roles THEN
            BEGIN
                CREATE ROLE newsflow_loader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
                COMMENT ON ROLE newsflow_loader IS
                    'newsflow ingestion: reads and writes the newsflow tables; cannot change the schema.';
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        ELSE
            RAISE NOTICE 'role newsflow_loader does not exist and % may not create roles: not created',
                current_user;
        END IF;
    END IF;

    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'newsflow_analyst') THEN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO newsflow_analyst', current_database());
        GRANT USAGE ON SCHEMA public TO newsflow_analyst;
        GRANT SELECT ON ALL TABLES IN SCHEMA public TO newsflow_analyst;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO newsflow_analyst;
    END IF;

    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'newsflow_loader') THEN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO newsflow_loader', current_database());
        GRANT USAGE ON SCHEMA public, ops TO newsflow_loader;
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public, ops TO newsflow_loader;
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public, ops TO newsflow_loader;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public, ops
            GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO newsflow_loader;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public, ops GRANT USAGE, SELECT ON SEQUENCES TO newsflow_loader;
    END IF;

    PERFORM ops.lockdown_newsflow_roles();
END
$fn$;
COMMENT ON FUNCTION ops.grant_newsflow_roles() IS
    'Creates newsflow_analyst (read-only, statement timeout) and newsflow_loader (reads and writes) when '
    'they are missing and the caller may create roles, grants them their privileges in this '
    'database, then runs ops.lockdown_newsflow_roles(). Migrations 003 and 005 run it; run it again '
    'as a superuser if the roles were created later or the migrations were run by a non-superuser.';
REVOKE ALL ON FUNCTION ops.grant_newsflow_roles() FROM PUBLIC;

-- Enforcing the analysts' statement timeout from outside their sessions --------------------------
-- Run by a superuser (or a member of pg_signal_backend), e.g. every minute from cron:
--   psql -d newsflow -c "SELECT ops.cancel_analyst_overruns()"

CREATE OR REPLACE FUNCTION ops.cancel_analyst_overruns(max_runtime interval DEFAULT '2 minutes')
RETURNS integer LANGUAGE sql AS $fn$
    SELECT count(*) FILTER (WHERE pg_cancel_backend(a.pid))::integer
    FROM pg_stat_activity a
    JOIN pg_roles m ON m.oid = a.usesysid AND NOT m.rolsuper
    JOIN pg_roles analyst ON analyst.rolname = 'newsflow_analyst'
    WHERE a.datname = current_database()
      AND a.state = 'active'
      AND a.pid <> pg_backend_pid()
      AND now() - a.query_start > max_runtime
      AND pg_has_role(m.oid, analyst.oid, 'MEMBER')
$fn$;
COMMENT ON FUNCTION ops.cancel_analyst_overruns(interval) IS
    'Cancels every query of newsflow_analyst (or a role that is a member of it) in this database '
    'that has run longer than max_runtime, whatever statement_timeout the session set; returns how '
    'many were cancelled. Run it as a superuser or a member of pg_signal_backend.';
REVOKE ALL ON FUNCTION ops.cancel_analyst_overruns(interval) FROM PUBLIC;

SELECT ops.grant_newsflow_roles();
