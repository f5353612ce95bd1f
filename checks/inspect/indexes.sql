-- Indexes other than the primary key's: one row per key column, in key order.
-- Parameter: %(schemas)s, the schema names to inspect (text[]).
-- Tables are filtered as in columns.sql.
--
-- * A UNIQUE constraint is backed by a unique index of the same name, so it is
--   reported here as a unique index (Prisma creates its uniques as indexes).
-- * The index of an exclusion constraint is not reported: it is a constraint Prisma
--   cannot declare, not an index.
-- * Columns come as attribute numbers, which the caller names from columns.sql's attnum
--   (a join on pg_attribute here read the whole of it: a third of the query's time).
-- * INCLUDE columns (past indnkeyatts) are not key columns: they come as a separate
--   array of attribute numbers on every row of the index, in their order.
-- * An expression column (attnum 0) comes as PostgreSQL's deparse of the expression
--   (pg_get_indexdef(index, n, true), e.g. lower(email) or (a + b)).
-- * descending: indoption bit 0; NULLS FIRST/LAST (bit 1) is not represented.
-- * opclass: only when it is not the default operator class for its type and method.
SELECT
    n.nspname::text                    AS table_schema,
    c.relname::text                    AS table_name,
    ic.relname::text                   AS index_name,
    i.indisunique                      AS is_unique,
    am.amname::text                    AS method,
    pg_catalog.pg_get_expr(i.indpred, i.indrelid) AS predicate,
    k.ord                              AS position,
    CASE WHEN i.indkey[k.ord - 1] = 0
         THEN pg_catalog.pg_get_indexdef(i.indexrelid, k.ord, true) END AS expression,
    i.indkey[k.ord - 1]                AS attnum,
    i.indkey[k.ord - 1] = 0            AS is_expression,
    (i.indoption[k.ord - 1] & 1) = 1   AS descending,
    CASE WHEN opc.opcdefault THEN NULL ELSE opc.opcname::text END AS opclass,
    CASE WHEN i.indnatts > i.indnkeyatts THEN ARRAY(
        SELECT i.indkey[inc.ord - 1]
        FROM generate_series(i.indnkeyatts::int + 1, i.indnatts::int) AS inc(ord)
        ORDER BY inc.ord) END          AS include_columns
FROM pg_catalog.pg_index AS i
JOIN pg_catalog.pg_class AS ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_am AS am ON am.oid = ic.relam
JOIN pg_catalog.pg_class AS c ON c.oid = i.indrelid
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
CROSS JOIN LATERAL generate_series(1, i.indnkeyatts::int) AS k(ord)
LEFT JOIN pg_catalog.pg_opclass AS opc ON opc.oid = i.indclass[k.ord - 1]
WHERE NOT i.indisprimary
  AND NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_constraint AS x
        WHERE x.conindid = i.indexrelid AND x.contype = 'x')
  AND n.nspname = ANY (%(schemas)s::text[])
  AND c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND c.relname <> '_prisma_migrations'
  AND NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_depend AS dep
        WHERE dep.classid = 'pg_catalog.pg_class'::regclass
          AND dep.objid = c.oid
          AND dep.deptype = 'e')
-- by number (the caller sorts by name; see columns.sql), key columns in key order
ORDER BY i.indexrelid, k.ord;
