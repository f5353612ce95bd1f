-- What a session is waiting for (its ungranted locks) and which sessions block it,
-- one row per (wait, blocker); blocker columns are NULL when none is known.
-- `age` is how long the blocker's transaction has been open (it holds the lock at most
-- that long), or how long it has been connected for a session-level lock.
SELECT w.locktype,
       w.mode,
       CASE WHEN w.relation IS NOT NULL THEN w.relation::regclass::text END AS relation,
       w.transactionid::text AS transactionid,
       b.pid,
       coalesce(b.application_name, '') AS application_name,
       b.usename::text AS usename,
       host(b.client_addr) AS client_addr,
       extract(epoch FROM now() - coalesce(b.xact_start, b.backend_start))::float8 AS age,
       b.state,
       b.query
FROM pg_locks AS w
LEFT JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocker(pid) ON true
LEFT JOIN pg_stat_activity AS b ON b.pid = blocker.pid
WHERE w.pid = %(pid)s
  AND NOT w.granted
ORDER BY b.pid
