from __future__ import annotations

import psycopg


def test_the_test_server_is_a_real_postgresql(pg_server, empty_db):
    with psycopg.connect(empty_db) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()[0]
    assert int(version) >= 150000


def test_a_database_made_from_the_incident_template_lacks_avatar_projects(incident_db):
    with psycopg.connect(incident_db) as conn:
        names = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert "avatars" in names and "users" in names
    assert "avatar_projects" not in names
