export type * from './port.ts'
export { createCache, type CacheConfig } from './factory.ts'
export { createMemoryCache, type MemoryCacheOptions } from './adapters/memory.ts'
export { createRedisCache, type RedisCacheOptions } from './adapters/redis.ts'
