-- Primary keys and foreign keys: one row per constraint, columns in key order.
-- Parameter: %(schemas)s, the schema names to inspect (text[]).
-- Tables are filtered as in columns.sql. Foreign keys with a parent constraint
-- (conparentid <> 0) are the copies PostgreSQL makes for partitions on either side
-- of a foreign key; only the constraint that was declared is reported.
-- Actions are the pg_constraint codes (a r c n d); the caller spells them out.
-- Columns come as attribute numbers (conkey, confkey, in key order), which the caller names
-- from columns.sql's attnum: a subquery per constraint naming them cost PostgreSQL about as
-- much as the rest of the query. A foreign key to a table columns.sql does not list (another
-- schema, a partition, an extension's table) also has the names (referenced_names).
SELECT
    n.nspname::text     AS table_schema,
    c.relname::text     AS table_name,
    con.contype::text   AS kind,           -- 'p' primary key, 'f' foreign key
    con.conname::text   AS name,
    con.conkey          AS columns,
    rn.nspname::text    AS referenced_schema,
    rc.relname::text    AS referenced_table,
    con.confkey         AS referenced_columns,
    -- the names, only where columns.sql does not list the referenced table's columns
    CASE WHEN con.contype = 'f' AND NOT (
              rn.nspname = ANY (%(schemas)s::text[])
              AND rc.relkind IN ('r', 'p')
              AND NOT rc.relispartition
              AND rc.relname <> '_prisma_migrations'
              AND NOT EXISTS (
                    SELECT 1 FROM pg_catalog.pg_depend AS rdep
                    WHERE rdep.classid = 'pg_catalog.pg_class'::regclass
                      AND rdep.objid = rc.oid
                      AND rdep.deptype = 'e'))
         THEN ARRAY(SELECT a.attname::text
                    FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
                    JOIN pg_catalog.pg_attribute AS a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                    ORDER BY k.ord) END AS referenced_names,
    con.confdeltype::text AS on_delete,
    con.confupdtype::text AS on_update
FROM pg_catalog.pg_constraint AS con
JOIN pg_catalog.pg_class AS c ON c.oid = con.conrelid
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class AS rc ON rc.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace AS rn ON rn.oid = rc.relnamespace
WHERE con.contype IN ('p', 'f')
  AND con.conparentid = 0
  AND n.nspname = ANY (%(schemas)s::text[])
  AND c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND c.relname <> '_prisma_migrations'
  AND NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_depend AS dep
        WHERE dep.classid = 'pg_catalog.pg_class'::regclass
          AND dep.objid = c.oid
          AND dep.deptype = 'e')
-- by number (the caller sorts by name; see columns.sql)
ORDER BY con.oid;
