// Redis queue adapter on BullMQ: one BullMQ queue per named queue. Workers fetch jobs by hand
// (BullMQ's "manual fetching") so the shared worker pool decides which queue a free worker takes
// from; BullMQ keeps the locks, the stalled-job recovery, the delays and the failed set.
// One file per role under ./redis/ (client, worker store, admin), with what they share in connection.ts.
export { DEFAULT_REDIS_PREFIX, type RedisConnectionOptions } from './redis/connection.ts'
export { createRedisQueueClient } from './redis/client.ts'
export { createRedisQueueServer, type RedisQueueOptions } from './redis/worker-store.ts'
export { createRedisQueueAdmin } from './redis/admin.ts'
