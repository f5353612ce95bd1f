-- Sessions, other than this one, holding a session advisory lock on a bigint key in this
-- database (used for Prisma Migrate's pg_advisory_lock(72707369)).
-- PostgreSQL shows a bigint key k as classid = k >> 32, objid = k & 0xffffffff, objsubid = 1;
-- advisory locks are per database, so a holder in another database is not a conflict.
-- PostgreSQL does not record when a lock was granted: `age` is how long the holding
-- session has been connected, an upper bound on how long it has held the lock.
SELECT a.pid,
       coalesce(a.application_name, '') AS application_name,
       a.usename::text AS usename,
       host(a.client_addr) AS client_addr,
       extract(epoch FROM now() - a.backend_start)::float8 AS age,
       a.state,
       a.query
FROM pg_locks AS l
JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE l.locktype = 'advisory'
  AND l.granted
  AND l.database = (SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database())
  AND l.classid = ((%(key)s::int8 >> 32)::int8)::oid
  AND l.objid = ((%(key)s::int8 & 4294967295)::int8)::oid
  AND l.objsubid = 1
  AND l.pid <> pg_backend_pid()
ORDER BY a.backend_start, a.pid
