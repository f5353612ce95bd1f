"""Key columns are named from columns.sql's attnums; a foreign key to a table columns.sql does
not list (another schema, a partition, Prisma's own table) is named by PostgreSQL instead."""
from __future__ import annotations

from checks.catalog import ForeignKey, PrimaryKey
from checks.inspect.live import inspect_database


def test_foreign_keys_to_tables_outside_the_inspected_ones_keep_their_column_names(make_db):
    url = make_db("""
        CREATE SCHEMA auth;
        CREATE TABLE auth.users (pad int, id int PRIMARY KEY, code text UNIQUE);
        CREATE TABLE _prisma_migrations (id varchar(36) PRIMARY KEY);
        CREATE TABLE events (id int NOT NULL, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
        CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
        CREATE TABLE posts (x int, id int, author int, code text, mig varchar(36), ev int, ev_at date,
                            PRIMARY KEY (author, id),
                            FOREIGN KEY (author) REFERENCES auth.users (id),
                            FOREIGN KEY (code) REFERENCES auth.users (code) ON DELETE CASCADE,
                            FOREIGN KEY (mig) REFERENCES _prisma_migrations (id),
                            FOREIGN KEY (ev_at, ev) REFERENCES events_2024 (at, id));
        ALTER TABLE posts DROP COLUMN x;""")
    posts = inspect_database(url, ["public"]).table("public", "posts")
    assert posts.primary_key == PrimaryKey("posts_pkey", ("author", "id"))
    assert posts.foreign_keys == (
        ForeignKey("posts_author_fkey", ("author",), "auth", "users", ("id",)),
        ForeignKey("posts_code_fkey", ("code",), "auth", "users", ("code",), on_delete="CASCADE"),
        ForeignKey("posts_ev_at_ev_fkey", ("ev_at", "ev"), "public", "events_2024", ("at", "id")),
        ForeignKey("posts_mig_fkey", ("mig",), "public", "_prisma_migrations", ("id",)),
    )
    both = inspect_database(url, ["public", "auth"]).table("public", "posts")
    assert both.foreign_keys == posts.foreign_keys
