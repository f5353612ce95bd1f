-- Sessions holding a lock that blocks catalog reads (ACCESS EXCLUSIVE) on a relation of the
-- inspected schemas: who to name when the inspection gave up waiting (lock_timeout).
SELECT l.pid,
       c.relname,
       l.mode,
       coalesce(a.application_name, ''),
       coalesce(a.usename::text, ''),
       coalesce(extract(epoch FROM now() - coalesce(a.xact_start, a.query_start))::bigint, 0),
       left(regexp_replace(coalesce(a.query, ''), '\s+', ' ', 'g'), 160)
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.granted
  AND l.mode = 'AccessExclusiveLock'
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND n.nspname = ANY(%(schemas)s)
  AND l.pid <> pg_backend_pid()
ORDER BY a.xact_start NULLS LAST, l.pid
LIMIT 3
