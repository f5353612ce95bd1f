-- Tables and their columns: one row per column, in attnum order; a table without
-- columns gives one row whose column fields are NULL.
-- Parameter: %(schemas)s, the schema names to inspect (text[]).
--
-- Which relations are tables (the same filter is in constraints.sql and indexes.sql):
--   * ordinary and partitioned tables (relkind r, p); views, materialized views,
--     foreign tables and sequences are not tables;
--   * not a partition: a partition is storage of its parent, which is the table the
--     schema describes (children of old-style INHERITS are real tables and are kept);
--   * not owned by an extension (pg_depend deptype 'e');
--   * not Prisma's own _prisma_migrations.
--
-- The type comes as format_type() for built-in types (pg_catalog); for any other
-- type (enum, domain, extension type) as its schema and name, and for an array of
-- such a type as the element's schema and name with is_array, so that the caller
-- writes it qualified and quoted whatever the search_path.
-- The default of a generated column is its generation expression, not a default:
-- it is left out. attnum names the key columns of constraints.sql.
SELECT
    n.nspname::text                                     AS table_schema,
    c.relname::text                                     AS table_name,
    a.attname::text                                     AS column_name,
    pg_catalog.format_type(a.atttypid, a.atttypmod)     AS builtin_type,
    CASE WHEN en.nspname <> 'pg_catalog' THEN en.nspname::text END AS udt_schema,
    CASE WHEN en.nspname <> 'pg_catalog' THEN et.typname::text END AS udt_name,
    et.oid <> t.oid                                     AS is_array,
    NOT a.attnotnull                                    AS nullable,
    CASE WHEN a.attgenerated = '' THEN pg_catalog.pg_get_expr(d.adbin, d.adrelid) END AS default_expr,
    a.attidentity <> ''                                 AS is_identity,
    a.attnum                                            AS attnum
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_attribute AS a
       ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_type AS t ON t.oid = a.atttypid
-- the element type of a true array (base type of category A), else the type itself
LEFT JOIN pg_catalog.pg_type AS et
       ON et.oid = CASE WHEN t.typtype = 'b' AND t.typcategory = 'A' AND t.typelem <> 0
                        THEN t.typelem ELSE t.oid END
LEFT JOIN pg_catalog.pg_namespace AS en ON en.oid = et.typnamespace
LEFT JOIN pg_catalog.pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = ANY (%(schemas)s::text[])
  AND c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND c.relname <> '_prisma_migrations'
  AND NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_depend AS dep
        WHERE dep.classid = 'pg_catalog.pg_class'::regclass
          AND dep.objid = c.oid
          AND dep.deptype = 'e')
-- by number, not by name: the caller sorts the tables by name, and integers sort in a
-- fraction of the time (sorting by schema and table name was a third of the query's time)
ORDER BY c.oid, a.attnum;
