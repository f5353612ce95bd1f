-- Which of the requested schemas exist.
-- Parameter: %(schemas)s, the schema names to inspect (text[]).
SELECT n.nspname::text AS name
FROM pg_catalog.pg_namespace AS n
WHERE n.nspname = ANY (%(schemas)s::text[])
ORDER BY n.nspname;
