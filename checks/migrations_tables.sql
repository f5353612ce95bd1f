-- The ordinary tables of one schema: what Prisma Migrate looks at to decide whether a
-- database is managed (`_prisma_migrations` present) or "not empty" (P3005). Like Prisma,
-- only relkind 'r' counts (not views, partitioned parents or foreign tables).
SELECT c.relname
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname = %(schema)s
ORDER BY c.relname
