"""The SQL reader (deploygen/audit/sql_reader.py) on files as PostgreSQL and psql run them.

Each behaviour has a test that shows it and one that shows what it leaves alone. Where the answer
is PostgreSQL's (a value, a precedence, what psql sends), the expectation was checked on a
PostgreSQL 15 server by running the same file with psql; pglast (PostgreSQL's own parser, GPL,
tests only) checks the statements the reader takes apart.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from deploygen.audit.sql_reader import (
    _Alter,
    _parse_alter,
    postgres_time,
    read_sql,
    sql_scope,
)
from deploygen.audit.sql_statements import _statements, read_statements
from deploygen.errors import InputError
from deploygen.sitefile.model import POSTGRES_SETTINGS

CORPUS = Path(__file__).parent / "corpus"
GOLDEN = Path(__file__).parent / "golden"


def _file(tmp_path, text: str, name: str = "p.sql") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _said(read) -> dict[str, object]:
    """Each timeout as ms, "off", "default" (nothing sets it) or "unknown"."""
    out = {}
    for name in POSTGRES_SETTINGS:
        r = read[f"postgres.{name}"]
        out[name] = "unknown" if r.unknown else "default" if r.default else r.value.ms if r.value else "off"
    return out


def _read(tmp_path, text: str, role: str = "app", database: str = "db") -> dict[str, object]:
    return _said(read_sql(_file(tmp_path, text), role, database))


# --- the reader as it was: the corpus file ---------------------------------------------------------

def test_sql_precedence_role_in_database_over_role_over_database():
    path = str(CORPUS / "seed000-before/var/www/dokon/set_pg_timeouts.sql")
    read = read_sql(path, "dokon", "dokon_db")
    statement = read["postgres.statement_timeout"]
    assert statement.value.nginx() == "120s" and statement.location.line == 5  # role IN DATABASE wins
    assert read["postgres.lock_timeout"].value.nginx() == "30s" and read["postgres.lock_timeout"].location.line == 3
    assert read["postgres.idle_in_transaction_session_timeout"].default
    assert read["postgres.idle_in_transaction_session_timeout"].value is None  # PostgreSQL's 0: off
    other_db = read_sql(path, "dokon", "elsewhere")
    assert other_db["postgres.statement_timeout"].default  # neither the database's nor the scoped one apply


def test_deploygens_own_files_read_back_as_rendered():
    """A rendered postgres.sql (BEGIN ... COMMIT, a RESET) reads back as its values, for its scope."""
    path = str(GOLDEN / "dokon/root/etc/deploygen/dokon/postgres.sql")
    assert sql_scope(path) == ("dokon", "dokon_db")
    said = _said(read_sql(path, "dokon", "dokon_db"))
    assert said == {"statement_timeout": 290_000, "lock_timeout": 10_000, "idle_in_transaction_session_timeout": 60_000,
                    "idle_session_timeout": "default", "client_connection_check_interval": 5000}


# --- precedence ------------------------------------------------------------------------------------

# PostgreSQL's ALTER ROLE page: "If there is a conflict, database-role-specific settings override
# role-specific ones, which in turn override database-specific ones", "Settings for specific
# databases or specific roles override settings for all roles", and "Using ALL with IN DATABASE is
# effectively the same as using the command ALTER DATABASE ... SET ...".
LADDER = """\
ALTER ROLE ALL SET statement_timeout = '1s';
ALTER DATABASE db SET statement_timeout = '2s';
ALTER ROLE app SET statement_timeout = '3s';
ALTER ROLE app IN DATABASE db SET statement_timeout = '4s';
ALTER ROLE ALL SET lock_timeout = '1s';
ALTER DATABASE db SET lock_timeout = '2s';
ALTER ROLE app SET lock_timeout = '3s';
ALTER ROLE ALL SET idle_session_timeout = '1s';
ALTER ROLE ALL IN DATABASE db SET idle_session_timeout = '2s';
ALTER ROLE ALL SET idle_in_transaction_session_timeout = '1s';
"""


def test_precedence_is_postgresqls_role_in_database_role_database_all_roles(tmp_path):
    assert _read(tmp_path, LADDER) == {"statement_timeout": 4000, "lock_timeout": 3000, "idle_session_timeout": 2000,
                                       "idle_in_transaction_session_timeout": 1000,
                                       "client_connection_check_interval": "default"}


def test_precedence_leaves_other_roles_and_databases_their_own(tmp_path):
    """Another database: no database entry and no role-in-database entry; another role: neither role entry."""
    assert _read(tmp_path, LADDER, database="db2") == {
        "statement_timeout": 3000, "lock_timeout": 3000, "idle_session_timeout": 1000,
        "idle_in_transaction_session_timeout": 1000, "client_connection_check_interval": "default"}
    assert _read(tmp_path, LADDER, role="other") == {
        "statement_timeout": 2000, "lock_timeout": 2000, "idle_session_timeout": 2000,
        "idle_in_transaction_session_timeout": 1000, "client_connection_check_interval": "default"}


def test_all_roles_in_a_database_is_the_databases_own_entry(tmp_path):
    text = ("ALTER DATABASE db SET statement_timeout = '1s';\n"
            "ALTER ROLE ALL IN DATABASE db SET statement_timeout = '2s';\n"  # the same entry: it replaces 1s
            "ALTER DATABASE db SET lock_timeout = '3s';\n"
            "ALTER ROLE ALL IN DATABASE db RESET lock_timeout;\n"  # and takes it away
            "ALTER ROLE ALL IN DATABASE db2 SET idle_session_timeout = '4s';\n")  # another database's
    said = _read(tmp_path, text)
    assert (said["statement_timeout"], said["lock_timeout"], said["idle_session_timeout"]) == (2000, "default", "default")


# --- DEFAULT, RESET ----------------------------------------------------------------------------------

def test_set_to_default_is_a_reset_the_next_scope_answers(tmp_path):
    text = ("ALTER ROLE app SET statement_timeout = '3s';\n"
            "ALTER ROLE app IN DATABASE db SET statement_timeout = '4s';\n"
            "ALTER ROLE app IN DATABASE db SET statement_timeout TO DEFAULT;\n"
            "ALTER ROLE app SET lock_timeout = '3s';\n"
            "ALTER ROLE app IN DATABASE db SET lock_timeout = default;\n"
            "ALTER DATABASE db SET idle_session_timeout = '9s';\n"
            "ALTER ROLE app SET idle_session_timeout = '3s';\n"
            "ALTER ROLE app RESET idle_session_timeout;\n"
            "ALTER ROLE app IN DATABASE db SET idle_in_transaction_session_timeout = '5s';\n"
            "ALTER ROLE app IN DATABASE db RESET ALL;\n")
    said = _read(tmp_path, text)
    assert (said["statement_timeout"], said["lock_timeout"]) == (3000, 3000)  # back to the role's
    assert said["idle_session_timeout"] == 9000  # back to the database's
    assert said["idle_in_transaction_session_timeout"] == "default"


def test_a_quoted_default_is_a_value_and_a_reset_leaves_the_others(tmp_path):
    text = ("ALTER ROLE app SET statement_timeout = 'default';\n"  # the text 'default': PostgreSQL refuses it
            "ALTER ROLE app SET lock_timeout = '6s';\n"
            "ALTER ROLE app SET idle_session_timeout = '7s';\n"
            "ALTER ROLE app SET idle_session_timeout TO DEFAULT;\n"
            "ALTER ROLE other RESET ALL;\n"
            "ALTER ROLE app IN DATABASE db2 RESET lock_timeout;\n")
    read = read_sql(_file(tmp_path, text), "app", "db")
    assert "'default' is not a PostgreSQL time" in read["postgres.statement_timeout"].unknown
    assert _said(read)["lock_timeout"] == 6000 and _said(read)["idle_session_timeout"] == "default"


# --- FROM CURRENT -------------------------------------------------------------------------------------

def test_from_current_is_unknown_at_its_statement(tmp_path):
    text = "ALTER ROLE app SET lock_timeout = '6s';\n\nALTER ROLE app\n  SET lock_timeout FROM CURRENT;\n"
    read = read_sql(_file(tmp_path, text), "app", "db")
    lock = read["postgres.lock_timeout"]
    assert (lock.value, lock.location.line) == (None, 3)
    assert "FROM CURRENT" in lock.unknown and "session that ran the file" in lock.unknown


def test_from_current_elsewhere_leaves_ours_known(tmp_path):
    text = ("ALTER ROLE other SET lock_timeout FROM CURRENT;\n"
            "ALTER ROLE app SET statement_timeout FROM CURRENT;\n"
            "ALTER ROLE app IN DATABASE db SET lock_timeout = '6s';\n"
            "ALTER ROLE app IN DATABASE db SET statement_timeout = '5s';\n")  # above the role's: known again
    assert _read(tmp_path, text)["lock_timeout"] == 6000 and _read(tmp_path, text)["statement_timeout"] == 5000


# --- names ----------------------------------------------------------------------------------------------

def test_quoted_and_mixed_case_names_and_alter_user(tmp_path):
    text = ('ALTER USER app SET "statement_timeout" = \'5s\';\n'
            "alter role APP set LOCK_TIMEOUT to '6s';\n"
            'ALTER ROLE "app" SET "Idle_Session_Timeout" = \'7s\';\n'  # a setting's name is matched in any case
            'ALTER ROLE "app" IN DATABASE Db SET idle_in_transaction_session_timeout = \'8s\';\n')
    assert _read(tmp_path, text) == {"statement_timeout": 5000, "lock_timeout": 6000, "idle_session_timeout": 7000,
                                     "idle_in_transaction_session_timeout": 8000,
                                     "client_connection_check_interval": "default"}


def test_a_quoted_role_or_database_keeps_its_case(tmp_path):
    text = ('ALTER ROLE "App" SET statement_timeout = \'1s\';\n'
            'ALTER ROLE app IN DATABASE "DB" SET lock_timeout = \'2s\';\n'
            'ALTER USER "app " SET idle_session_timeout = \'3s\';\n')
    assert set(_read(tmp_path, text).values()) == {"default"}
    assert _read(tmp_path, text, role="App")["statement_timeout"] == 1000


def test_names_are_cut_at_63_bytes_as_postgresql_cuts_them(tmp_path):
    long = "a" * 70
    text = f"ALTER ROLE {long} SET statement_timeout = '1s';\n"
    assert _read(tmp_path, text, role="a" * 63)["statement_timeout"] == 1000
    assert _read(tmp_path, text, role="a" * 62)["statement_timeout"] == "default"


# --- CURRENT_USER, CURRENT_ROLE, SESSION_USER ---------------------------------------------------------------

@pytest.mark.parametrize("who", ["CURRENT_USER", "current_role", "SESSION_USER"])
def test_a_role_that_is_whoever_runs_the_file_is_unknown(who, tmp_path):
    text = (f"ALTER ROLE app SET statement_timeout = '5s';\nALTER ROLE {who} SET statement_timeout = '1s';\n"
            f"ALTER USER {who} IN DATABASE db SET lock_timeout = '2s';\n")
    read = read_sql(_file(tmp_path, text), "app", "db")
    for name, line in (("statement_timeout", 2), ("lock_timeout", 3)):
        r = read[f"postgres.{name}"]
        assert r.value is None and r.location.line == line and who.upper() in r.unknown and "runs the file" in r.unknown


def test_whoever_runs_the_file_leaves_what_it_cannot_reach(tmp_path):
    text = ("ALTER ROLE app IN DATABASE db SET statement_timeout = '5s';\n"
            "ALTER ROLE CURRENT_USER SET statement_timeout = '1s';\n"  # below the role in the database
            "ALTER ROLE CURRENT_USER IN DATABASE db2 SET lock_timeout = '1s';\n"  # another database
            'ALTER ROLE "current_user" SET idle_session_timeout = \'1s\';\n'  # a role named current_user
            "ALTER ROLE CURRENT_USER RESET idle_in_transaction_session_timeout;\n")  # nothing there to take
    assert set(_read(tmp_path, text).items()) >= {("statement_timeout", 5000), ("lock_timeout", "default"),
                                                   ("idle_session_timeout", "default"),
                                                   ("idle_in_transaction_session_timeout", "default")}


# --- comments, literals, dollar quotes ------------------------------------------------------------------------

def test_comments_nest_and_literals_hold_semicolons(tmp_path):
    text = ("/* outer /* nested ; */ still a comment ALTER ROLE app SET statement_timeout = '1s'; */\n"
            "ALTER ROLE app SET statement_timeout = '5s'; -- ALTER ROLE app SET statement_timeout = '9s';\n"
            "SELECT 'it''s; ALTER ROLE app SET lock_timeout = ''1s''';\n"
            "SELECT E'\\'; ALTER ROLE app SET lock_timeout = ''2s'';';\n"
            "ALTER ROLE app SET lock_timeout = E'6\\x73';\n"
            "SELECT \"a;\"\"b\" FROM (SELECT 1 AS \"a;\"\"b\") x;\n"
            "ALTER ROLE app SET idle_session_timeout = '7'\n  's';\n"  # one string: a newline between the parts
            "ALTER ROLE app SET idle_in_transaction_session_timeout = U&'8\\0073';\n")
    said = _read(tmp_path, text)
    assert (said["statement_timeout"], said["lock_timeout"], said["idle_session_timeout"],
            said["idle_in_transaction_session_timeout"]) == (5000, 6000, 7000, 8000)


def test_comment_and_quote_marks_inside_literals_are_text(tmp_path):
    text = ("SELECT '/* not a comment';\nALTER ROLE app SET statement_timeout = '5s';\n"
            "SELECT '-- not one either'; ALTER ROLE app SET lock_timeout = '6s';\n"
            "SELECT 'no \\'; ALTER ROLE app SET idle_session_timeout = '7s';\n")  # a backslash is text in ''
    said = _read(tmp_path, text)
    assert (said["statement_timeout"], said["lock_timeout"], said["idle_session_timeout"]) == (5000, 6000, 7000)


def test_dollar_quotes_hold_semicolons_and_other_tags(tmp_path):
    text = ("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; SELECT 2 $$;\n"
            "SELECT $a$;$a$, $b$ $a$ ; ALTER ROLE app SET lock_timeout = '1s'; $b$;\n"
            "ALTER ROLE app SET statement_timeout = $$5s$$;\n"
            "ALTER ROLE app SET lock_timeout = $t$6s$t$;\n")
    said = _read(tmp_path, text)
    assert (said["statement_timeout"], said["lock_timeout"]) == (5000, 6000)


def test_a_dollar_inside_a_name_or_a_parameter_opens_no_quote(tmp_path):
    text = ("SELECT a$b$ FROM t WHERE x = $1;\nALTER ROLE app SET statement_timeout = '5s';\n"
            "SELECT 1$a$;$a$;\nALTER ROLE app SET lock_timeout = '6s';\n")  # 1 then $a$;$a$: a quote
    said = _read(tmp_path, text)
    assert (said["statement_timeout"], said["lock_timeout"]) == (5000, 6000)


def test_an_alter_inside_a_do_block_or_a_function_is_unknown(tmp_path):
    text = ("ALTER ROLE app SET lock_timeout = '6s';\n"
            "DO $$\nBEGIN\n  IF now() > '2030-01-01' THEN\n    ALTER ROLE app SET statement_timeout = '1s';\n"
            "  END IF;\nEND\n$$;\n"
            "DO LANGUAGE plpgsql 'BEGIN EXECUTE format(''ALTER ROLE %I SET idle_session_timeout = 1'', ''app''); END';\n"
            "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $f$\nBEGIN\n"
            "  ALTER ROLE app IN DATABASE db SET idle_in_transaction_session_timeout = '1s';\nEND\n$f$;\n")
    read = read_sql(_file(tmp_path, text), "app", "db")
    statement = read["postgres.statement_timeout"]
    assert statement.location.line == 5 and "DO block at line 2" in statement.unknown
    assert "EXECUTE" in read["postgres.idle_session_timeout"].unknown
    idle = read["postgres.idle_in_transaction_session_timeout"]
    assert idle.location.line == 12 and "function created at line 10" in idle.unknown
    assert _said(read)["lock_timeout"] == 6000


def test_a_do_block_that_sets_none_of_ours_changes_nothing(tmp_path):
    text = ("ALTER ROLE app SET statement_timeout = '5s';\n"
            "DO $$ BEGIN ALTER ROLE other SET statement_timeout = '1s'; RAISE NOTICE 'statement_timeout'; END $$;\n"
            "DO $$ BEGIN ALTER ROLE app SET search_path = public; PERFORM 1; END $$;\n"
            "CREATE FUNCTION g() RETURNS text LANGUAGE sql AS $$ SELECT 'ALTER ROLE app SET lock_timeout = 1' $$;\n")
    said = _read(tmp_path, text)
    assert (said["statement_timeout"], said["lock_timeout"]) == (5000, "default")


# --- psql ----------------------------------------------------------------------------------------------

def test_psql_meta_commands_end_at_their_line(tmp_path):
    text = ("\\set ON_ERROR_STOP on\n\\connect db\n\\c db app\n"
            "ALTER ROLE app SET statement_timeout = '5s';\n"
            "\\echo 'hello; ALTER ROLE app SET statement_timeout = ''1s'';'\n"
            "ALTER ROLE app\n\\echo a command inside a statement\n SET lock_timeout = '6s';\n"
            "ALTER ROLE app SET idle_session_timeout = '7s' \\g\n"  # \g sends the statement as ; does
            "ALTER ROLE app SET idle_in_transaction_session_timeout = '1s' \\r\n")  # \r drops it
    said = _read(tmp_path, text)
    assert (said["statement_timeout"], said["lock_timeout"], said["idle_session_timeout"],
            said["idle_in_transaction_session_timeout"]) == (5000, 6000, 7000, "default")


def test_a_backslash_inside_literals_and_comments_is_no_meta_command(tmp_path):
    text = ("SELECT 'a\\c b'; -- \\c elsewhere\n/* \\i other.sql */\n"
            "ALTER ROLE app SET statement_timeout = E'5\\x73';\n"
            "SELECT $$ \\set x $$; ALTER ROLE app SET lock_timeout = '6s';\n")
    said = _read(tmp_path, text)
    assert (said["statement_timeout"], said["lock_timeout"]) == (5000, 6000)
    assert [st.meta for st in _statements(text)] == ["", "", "", ""]


def test_psql_variables_the_file_sets_are_read_and_others_are_unknown(tmp_path):
    text = ("\\set r app\n\\set v '8s'\n"
            "ALTER ROLE :\"r\" SET idle_session_timeout = '7s';\n"
            "ALTER ROLE :r SET idle_in_transaction_session_timeout = :'v';\n"
            "ALTER ROLE :\"role\" SET statement_timeout = '1s';\n"  # set by psql -v, perhaps
            "ALTER ROLE app SET lock_timeout = :timeout;\n")
    read = read_sql(_file(tmp_path, text), "app", "db")
    said = _said(read)
    assert (said["idle_session_timeout"], said["idle_in_transaction_session_timeout"]) == (7000, 8000)
    assert ':"role" is not set in the file' in read["postgres.statement_timeout"].unknown
    assert ":timeout is not set in the file" in read["postgres.lock_timeout"].unknown


def test_casts_slices_and_quoted_colons_are_no_psql_variables(tmp_path):
    text = ("SELECT x::int, a[1:2], ':v', $$:x$$ FROM t;\n"
            "ALTER ROLE app SET statement_timeout = '5s'::text;\n"  # PostgreSQL refuses a cast there
            "ALTER ROLE app SET lock_timeout = '6s';\n")
    problems = []
    read = read_sql(_file(tmp_path, text), "app", "db", problems=problems)
    assert _said(read)["lock_timeout"] == 6000 and not read["postgres.lock_timeout"].unknown
    assert [p.location.line for p in problems] == [2] and "unexpected `::`" in problems[0].message


def test_psql_include_and_gexec_are_unknown(tmp_path):
    text = ("ALTER ROLE app IN DATABASE db SET statement_timeout = '5s';\n"
            "\\i other.sql\n"  # any timeout, at any scope
            "SELECT format('ALTER ROLE %I SET lock_timeout = 1', rolname) FROM pg_roles \\gexec\n")
    read = read_sql(_file(tmp_path, text), "app", "db")
    assert "`\\i other.sql` runs another file" in read["postgres.statement_timeout"].unknown
    assert "\\gexec" in read["postgres.lock_timeout"].unknown and read["postgres.lock_timeout"].location.line == 3


def test_include_and_gexec_that_cannot_run_or_name_nothing_change_nothing(tmp_path):
    text = ("\\if off\n\\i other.sql\n\\endif\n"
            "ALTER ROLE app SET statement_timeout = '5s';\n"
            "SELECT format('GRANT SELECT ON %I TO app', relname) FROM pg_class \\gexec\n")
    assert _read(tmp_path, text)["statement_timeout"] == 5000


def test_sql_scope_is_the_first_named_role_in_a_named_database(tmp_path):
    text = ("ALTER ROLE CURRENT_USER IN DATABASE d0 SET lock_timeout = '1s';\n"
            "ALTER ROLE ALL IN DATABASE d1 SET lock_timeout = '1s';\n"
            "ALTER ROLE :\"r\" IN DATABASE d2 SET lock_timeout = '1s';\n"
            "ALTER ROLE \"Shop\" IN DATABASE \"shop_db\" SET lock_timeout = '1s';\n"
            "ALTER ROLE other IN DATABASE d3 SET lock_timeout = '1s';\n")
    assert sql_scope(_file(tmp_path, text)) == ("Shop", "shop_db")
    other = _file(tmp_path, "ALTER ROLE shop SET lock_timeout = '1s';\nALTER DATABASE shop_db RESET ALL;\n", "o.sql")
    assert sql_scope(other) is None


def test_psql_if_runs_the_branch_it_can_evaluate(tmp_path):
    text = ("\\if false\nALTER ROLE app SET statement_timeout = '1s';\n\\elif yes\n"
            "ALTER ROLE app SET statement_timeout = '5s';\n\\else\nALTER ROLE app SET statement_timeout = '2s';\n"
            "\\endif\n\\if :flag\nALTER ROLE app SET lock_timeout = '6s';\n\\endif\n"
            "ALTER ROLE app SET idle_session_timeout = '7s';\n")
    read = read_sql(_file(tmp_path, text), "app", "db")
    assert _said(read)["statement_timeout"] == 5000 and _said(read)["idle_session_timeout"] == 7000
    assert "\\if whose condition audit cannot evaluate (line 8)" in read["postgres.lock_timeout"].unknown


def test_copy_from_stdin_data_is_not_sql(tmp_path):
    text = ("COPY t (a) FROM stdin;\nit's; ALTER ROLE app SET statement_timeout = '1s';\n$$ /* '\n\\.\n"
            "ALTER ROLE app SET statement_timeout = '5s';\n"
            "COPY t TO stdout;\nALTER ROLE app SET lock_timeout = '6s';\n")  # TO STDOUT reads no data
    said = _read(tmp_path, text)
    assert (said["statement_timeout"], said["lock_timeout"]) == (5000, 6000)
    assert [st.line for st in _statements(text)] == [1, 5, 6, 7]


def test_statements_end_where_psql_ends_them(tmp_path):
    """psql sends no `;` inside parentheses nor inside a function's BEGIN ... END; a last statement
    needs no `;`."""
    text = ("CREATE OR REPLACE FUNCTION h() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n"
            "  SELECT CASE WHEN true THEN 1 ELSE 2 END;\nEND;\n"
            "SELECT (1; 2);\nALTER ROLE app SET lock_timeout = '6s' \\; ALTER ROLE app SET idle_session_timeout = '7s';\n"
            "ALTER ROLE app SET statement_timeout = '5s'")
    assert [st.line for st in _statements(text)] == [1, 6, 7, 7, 8]
    said = _read(tmp_path, text)
    assert (said["statement_timeout"], said["lock_timeout"], said["idle_session_timeout"]) == (5000, 6000, 7000)


# --- values --------------------------------------------------------------------------------------------

# Each as PostgreSQL 15 read it (SHOW, then pg_settings' ms): strtol reads '010' as octal and
# '0x10' as hexadecimal, a fraction is rounded half to even, a unit is case-sensitive.
VALUES = {
    "'5s'": 5000, "5000": 5000, "'5 s'": 5000, "' 5 min '": 300_000, "'1min'": 60_000, "'1h'": 3_600_000, "'1d'": 86_400_000,
    "0": "off", "'0'": "off", "'100us'": "off", "'1500us'": 2, "'2.5ms'": 2, "1.5": 2, "'1.5s'": 1500, "'1e3'": 1000,
    "'.5s'": 500, "+5000": 5000, "017": 17, "'010'": 8, "'0x10'": 16, "'0x1.8p1s'": 3000, '"5s"': 5000,
    "'2147483647'": 2_147_483_647, "$$5s$$": 5000, "E'5\\x73'": 5000, "U&'5\\0073'": 5000,
}
REFUSED = ["'-1'", "-1", "- 5", "'08'", "' .5s'", "'inf'", "'1e999'", "'1e-310'", "'2147483648'", "'5 mins'", "'5S'",
           "on", "'1y'", "'0x.8s'", "'5s', '6s'", "'9" + "9" * 400 + "'"]


@pytest.mark.parametrize("value", sorted(VALUES))
def test_values_as_postgresql_reads_them(value, tmp_path):
    assert _read(tmp_path, f"ALTER ROLE app SET statement_timeout = {value};\n")["statement_timeout"] == VALUES[value]


@pytest.mark.parametrize("value", REFUSED)
def test_values_postgresql_refuses_are_unknown_at_their_line(value, tmp_path):
    read = read_sql(_file(tmp_path, f"SELECT 1;\nALTER ROLE app SET statement_timeout = {value};\n"), "app", "db")
    r = read["postgres.statement_timeout"]
    assert (r.value, r.location.line) == (None, 2) and r.unknown and len(r.unknown) < 200, r.unknown


def test_postgres_time_is_the_text_postgresql_reads():
    assert [postgres_time(t).ms for t in ("290s", "5min", "30000", "1.5s")] == [290_000, 300_000, 30_000, 1500]
    assert postgres_time("0") is None
    with pytest.raises(ValueError, match="outside what PostgreSQL takes"):
        postgres_time("-1")


# --- problems ------------------------------------------------------------------------------------------

BROKEN = ("ALTER ROLE app SET statement_timeout = '5s';\n"
          "ALTER ROLE app IN DATABASE;\n"
          "ALTER ROLE app SET lock_timeout = 6s;\n"
          "ALTER ROLE app SET idle_session_timeout '7s';\n"
          "ALTER ROLE app SET idle_in_transaction_session_timeout = '8s';\n"
          "SELECT 'never closed;\nALTER ROLE app SET client_connection_check_interval = 1000;\n")


def test_an_unreadable_statement_is_a_located_problem_and_the_others_are_read(tmp_path):
    path = _file(tmp_path, BROKEN)
    problems = []
    said = _said(read_sql(path, "app", "db", problems=problems))
    assert [(p.location, p.key) for p in problems] == [((path, line, 1), "postgres") for line in (6, 2, 3, 4)]
    assert all(p.message.startswith("could not be read: ") for p in problems)
    messages = " | ".join(p.message for p in problems)
    for said_there in ("a ' that is never closed", "names no database", "refuses 6s without quotes: write '6s'",
                       "neither TO, = nor FROM CURRENT"):
        assert said_there in messages
    assert (said["statement_timeout"], said["idle_in_transaction_session_timeout"]) == (5000, 8000)
    assert said["client_connection_check_interval"] == "default"  # inside the string never closed


def test_without_a_problems_list_they_are_raised_together(tmp_path):
    path = _file(tmp_path, BROKEN)
    with pytest.raises(InputError) as raised:
        read_sql(path, "app", "db")
    assert [p.location.line for p in raised.value.problems] == [2, 3, 4, 6]
    with pytest.raises(InputError):
        read_statements(path)
    problems = []
    statements = read_statements(path, problems=problems)
    assert [p.location.line for p in problems] == [6]  # the lexer's; the statements' are read_sql's
    assert sql_scope(path, statements) is None and sql_scope(path, problems=[]) is None


def test_a_broken_statement_for_another_role_is_no_problem_of_ours(tmp_path):
    text = "ALTER ROLE other IN DATABASE;\nALTER ROLE other SET lock_timeout 5;\nALTER ROLE app SET lock_timeout = '6s';\n"
    problems = []
    assert _said(read_sql(_file(tmp_path, text), "app", "db", problems=problems))["lock_timeout"] == 6000
    assert problems == []


@pytest.mark.parametrize("text, line", [("SELECT 1;\nSELECT $a$ never closed;\n", 2), ('SELECT "never closed\n', 1),
                                        ("SELECT (1;\nALTER ROLE app SET statement_timeout = '1s';\n", 1),
                                        ("/* a comment holding statements;\nALTER ROLE x SET y = 1;\n", 1),
                                        ("SELECT 1 /* cut off\n", 1)])
def test_the_end_of_the_file_inside_a_quote_or_parentheses_is_a_problem(text, line, tmp_path):
    problems = []
    read = read_sql(_file(tmp_path, text), "app", "db", problems=problems)
    assert [p.location.line for p in problems] == [line] and _said(read)["statement_timeout"] == "default"


def test_a_comment_left_open_with_no_statement_in_it_is_no_problem(tmp_path):
    problems = []
    read_sql(_file(tmp_path, "ALTER ROLE app SET statement_timeout = '5s';\n" + "/* " * 1000), "app", "db",
             problems=problems)
    assert problems == []


# --- transactions, DROP, RENAME ------------------------------------------------------------------------------

def test_transactions_as_postgresql_commits_and_rolls_them_back(tmp_path):
    text = ("BEGIN;\nALTER ROLE app SET statement_timeout = '5s';\nCOMMIT;\n"
            "BEGIN;\nALTER ROLE app SET lock_timeout = '6s';\nROLLBACK;\n"
            "START TRANSACTION;\nALTER ROLE app SET idle_session_timeout = '7s';\nSAVEPOINT a;\n"
            "ALTER ROLE app SET idle_session_timeout = '8s';\nROLLBACK TO SAVEPOINT a;\nEND;\n")
    said = _read(tmp_path, text)
    assert (said["statement_timeout"], said["lock_timeout"], said["idle_session_timeout"]) == (5000, "default", 7000)


def test_a_transaction_that_fails_or_is_never_committed_is_unknown(tmp_path):
    text = ("BEGIN;\nALTER ROLE app SET statement_timeout = '5s';\n"
            "ALTER ROLE app SET lock_timeout = '-1';\nCOMMIT;\n"  # PostgreSQL refuses -1: the COMMIT rolls back
            "ALTER ROLE app SET idle_session_timeout = '7s';\n"
            "BEGIN;\nALTER ROLE app SET idle_in_transaction_session_timeout = '8s';\n"
            "\\c db\n"  # a new session: the open transaction is rolled back
            "BEGIN;\nALTER ROLE app SET client_connection_check_interval = '1s';\n")  # the file ends
    read = read_sql(_file(tmp_path, text), "app", "db")
    statement = read["postgres.statement_timeout"]
    assert statement.location.line == 2 and "COMMIT (line 4) rolls back: line 3 fails" in statement.unknown
    check = read["postgres.client_connection_check_interval"]
    assert "never commits" in check.unknown and "--single-transaction" in check.unknown
    said = _said(read)
    assert (said["idle_session_timeout"], said["idle_in_transaction_session_timeout"]) == (7000, "default")


def test_drop_role_takes_its_settings_and_a_rename_is_unknown(tmp_path):
    text = ("ALTER ROLE app SET statement_timeout = '5s';\nALTER ROLE app IN DATABASE db SET lock_timeout = '6s';\n"
            "DROP ROLE IF EXISTS other, app;\nCREATE ROLE app LOGIN;\n"
            "ALTER ROLE app SET idle_session_timeout = '7s';\n"
            "ALTER DATABASE db SET idle_in_transaction_session_timeout = '8s';\nDROP DATABASE db2;\n")
    assert _read(tmp_path, text) == {"statement_timeout": "default", "lock_timeout": "default",
                                     "idle_session_timeout": 7000, "idle_in_transaction_session_timeout": 8000,
                                     "client_connection_check_interval": "default"}
    renamed = read_sql(_file(tmp_path, text + "ALTER ROLE app RENAME TO gone;\nALTER ROLE app2 RENAME TO app;\n"),
                       "app", "db")
    assert all("app2 is renamed app here" in r.unknown for r in renamed.values())  # its settings: above the database's
    others = _read(tmp_path, text + "ALTER ROLE other RENAME TO other2;\nALTER DATABASE db2 RENAME TO db3;\n")
    assert others == _read(tmp_path, text)


# --- what the reader takes apart, next to PostgreSQL's own parser --------------------------------------------

PGLAST_CORPUS = r"""
-- every form of the statements the reader reads
ALTER ROLE app SET statement_timeout = '5s';
ALTER ROLE "App" SET "Statement_Timeout" TO 5000;
alter user app in database "Db" set lock_timeout = 1.5;
ALTER ROLE ALL SET idle_session_timeout = '1min';
ALTER ROLE ALL IN DATABASE db SET idle_session_timeout TO DEFAULT;
ALTER ROLE CURRENT_USER SET lock_timeout = DEFAULT;
ALTER ROLE current_role IN DATABASE db SET statement_timeout FROM CURRENT;
ALTER USER SESSION_USER RESET statement_timeout;
ALTER ROLE app RESET ALL;
ALTER ROLE app IN DATABASE db RESET ALL;
ALTER DATABASE db SET idle_in_transaction_session_timeout = -1.5, +5, 017, on, "q";
ALTER DATABASE "My DB" RESET lock_timeout;
ALTER ROLE app SET client_connection_check_interval = E'5\x73', U&'5\0073', U&'5!0073' UESCAPE '!';
ALTER ROLE app SET statement_timeout = '7'
  's';
ALTER ROLE app SET lock_timeout = $$6s$$;
ALTER ROLE aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa SET statement_timeout = 0;
/* comments /* nest */ ; */ ALTER ROLE app SET statement_timeout = '1s' -- and end lines
;
SELECT 'ALTER ROLE app SET statement_timeout = ''9s'';', $t$ ; $t$, "x;""y" FROM t;
DO $$ BEGIN ALTER ROLE app SET statement_timeout = '2s'; END $$;
CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END;
\connect db
ALTER ROLE app SET search_path = a, b;
ALTER DATABASE db SET TABLESPACE pg_default;
ALTER ROLE app WITH LOGIN;
ALTER ROLE app RENAME TO app2;
BEGIN; ALTER ROLE app2 SET statement_timeout = '3s'; COMMIT
"""

_PGLAST_KINDS = {"VAR_SET_VALUE": "set", "VAR_SET_DEFAULT": "default", "VAR_SET_CURRENT": "current",
                 "VAR_RESET": "reset", "VAR_RESET_ALL": "reset_all"}


def _pglast_view(stmt) -> tuple | None:
    kind = type(stmt).__name__
    if kind not in ("AlterRoleSetStmt", "AlterDatabaseSetStmt"):
        return None
    set_ = stmt.setstmt
    action = _PGLAST_KINDS[set_.kind.name]
    setting = (set_.name or "").lower()
    if setting and setting not in POSTGRES_SETTINGS:
        return None
    values = []
    for arg in set_.args or ():
        val = arg.val
        values.append(("s", val.sval) if hasattr(val, "sval") else ("n", str(val.ival)) if hasattr(val, "ival")
                      else ("f", val.fval))
    if kind == "AlterDatabaseSetStmt":
        return "database", None, stmt.dbname, action, setting, tuple(values)
    role = stmt.role
    who = None if role is None else role.rolename if role.roletype.name == "ROLESPEC_CSTRING" else (
        role.roletype.name.removeprefix("ROLESPEC_").lower())
    return "role", who, stmt.database, action, setting, tuple(values)


def _our_view(a: _Alter) -> tuple:
    values = []
    for *sign, t in a.values:
        text = ("-" if sign and sign[0].value == "-" else "") + t.value
        values.append(("s", t.value) if t.kind != "number" else ("n", str(int(text))) if t.value.isdigit()
                      else ("f", text))
    who = None if a.role_kind == "all" else a.role or a.role_why.split()[3].rstrip(",").lower() if a.kind == "role" else None
    return a.kind, who, a.database or None, a.action, a.setting, tuple(values)


def test_the_reader_agrees_with_postgresqls_own_parser():
    """pglast (GPL, tests only) parses the same file (psql's meta-commands taken out: they are psql's):
    as many statements, and the same target, scope, action, setting and values for each of ours."""
    import pglast

    ours = [st for st in _statements(PGLAST_CORPUS) if not st.meta]
    theirs = pglast.parse_sql(re.sub(r"(?m)^\\.*$", "", PGLAST_CORPUS))
    assert len(ours) == len(theirs)
    mine = [_our_view(a) for a in map(_parse_alter, ours)
            if isinstance(a, _Alter) and a.action not in ("other", "") and not a.bad]
    assert mine == [v for v in (_pglast_view(raw.stmt) for raw in theirs) if v is not None]
    assert len(mine) == 18


# --- a hostile file stays linear ----------------------------------------------------------------------

MIB = 1 << 20


def _mib(unit: str, before: str = "", after: str = "") -> str:
    """`before`, `unit` over and over, `after`: one MiB, the most audit reads of a file."""
    size = MIB - len(before) - len(after)
    return before + (unit * (size // len(unit) + 1))[:size] + after


HOSTILE = {
    "100,000 unclosed $a$": _mib("x", "".join(f"$a{i}$ " for i in range(100_000))),
    "$a$ over and over": _mib("$a$"),
    "/* over and over": _mib("/*"),
    "/*/ over and over": _mib("/*/"),
    "quotes": _mib("'"),
    "E'\\ over and over": _mib("\\", "ALTER ROLE app SET statement_timeout = E'"),
    "U&' escapes": _mib("\\0041", "ALTER ROLE app SET statement_timeout = U&'"),
    "'' continued": _mib("'a'\n", "ALTER ROLE app SET statement_timeout = "),
    "(": _mib("("),
    ";": _mib(";"),
    "backslashes": _mib("\\"),
    "meta-commands": _mib("\\c db\n"),
    "psql variables": _mib("\\set a :a:a:a:a\n", "\\set a x\n"),
    "\\if": _mib("\\if :x\n"),
    "ALTER ROLE": _mib("ALTER ROLE app IN DATABASE db SET statement_timeout = '1s';\n"),
    "savepoints": _mib("SAVEPOINT a; ALTER ROLE app SET lock_timeout = 1; ROLLBACK TO b; ", "BEGIN;"),
    "DO body": _mib("ALTER ROLE app SET statement_timeout = v; ", "DO $$BEGIN ", "END$$;"),
    "DROP ROLE list": _mib("a, ", "DROP ROLE ", "app;"),
}


@pytest.mark.parametrize("shape", sorted(HOSTILE))
def test_a_hostile_mib_reads_in_linear_time(shape, tmp_path):
    """One forward pass: each quote, comment and dollar quote found by one search from where it
    opens. A reader that retried at each character would take hours on these, not seconds."""
    path = _file(tmp_path, HOSTILE[shape])
    start = time.process_time()
    read = read_sql(path, "app", "db", problems=[])
    assert time.process_time() - start < 15, shape
    assert set(read) == {f"postgres.{name}" for name in POSTGRES_SETTINGS}


def test_audit_says_an_unreadable_statement_and_reads_the_others(cli, tmp_path):
    """A quote never closed is a `not read:` line at its statement, not a refusal of the file."""
    sql = tmp_path / "x.sql"
    sql.write_text("ALTER ROLE shop SET statement_timeout = '5s';\nALTER ROLE shop SET lock_timeout = 'oops;\n")
    result = cli("audit", "--sql", sql, "--role", "shop", "--database", "shop_db", "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    assert f"not read: {sql}:2:1: could not be read: a ' that is never closed" in result.stderr
    assert f"read: app: postgres: {sql}" in result.stderr
