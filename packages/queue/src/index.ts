export type * from './port.ts'
export { createPostgresQueueClient, createPostgresQueueServer, enqueueInTransaction, installQueueSchema, type PostgresQueueOptions } from './adapters/postgres.ts'
export { createQueueClient, createQueueServer, type QueueConfig } from './factory.ts'
