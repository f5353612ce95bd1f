-- Enum types with their values in sort order (an enum may have no value at all).
-- Parameter: %(schemas)s, the schema names to inspect (text[]).
-- Enums owned by an extension (pg_depend deptype 'e') are not the application's.
SELECT
    n.nspname::text AS enum_schema,
    t.typname::text AS enum_name,
    COALESCE(array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
                 FILTER (WHERE e.enumlabel IS NOT NULL),
             '{}') AS enum_values
FROM pg_catalog.pg_type AS t
JOIN pg_catalog.pg_namespace AS n ON n.oid = t.typnamespace
LEFT JOIN pg_catalog.pg_enum AS e ON e.enumtypid = t.oid
WHERE t.typtype = 'e'
  AND n.nspname = ANY (%(schemas)s::text[])
  AND NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_depend AS dep
        WHERE dep.classid = 'pg_catalog.pg_type'::regclass
          AND dep.objid = t.oid
          AND dep.deptype = 'e')
GROUP BY t.oid, n.nspname, t.typname
ORDER BY n.nspname, t.typname;
