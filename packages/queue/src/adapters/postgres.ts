// Postgres queue adapter on graphile-worker: jobs live in graphile-worker's tables in the chat
// database, so a job can be added in the same transaction as the row that caused it
// (graphile_worker.add_job). Workers claim jobs with their own query instead of graphile-worker's
// runner, which has no weighted queues, fixed backoff and a 4-hour lock: see ../../README.md.
// One file per role under ./postgres/, every statement named in ./postgres/sql.ts.
export { installQueueSchema } from './postgres/schema.ts'
export { buildEnqueueQuery, enqueueInTransaction, createPostgresQueueClient } from './postgres/client.ts'
export { createPostgresQueueServer, type PostgresQueueOptions } from './postgres/worker-store.ts'
export { createPostgresQueueAdmin } from './postgres/admin.ts'
