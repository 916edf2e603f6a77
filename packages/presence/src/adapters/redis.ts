// Redis presence (with REDIS_URL). Keys under the prefix (default "chatty:presence:"):
//   procs          sorted set: process id -> expiry (ms, Redis' own clock)
//   proc:<pid>     set: the users with a socket on that process
//   user:<uid>     set: the processes holding a socket of that user
// A heartbeat is one ZADD whatever the number of users. Every script reads Redis' TIME, so
// process clocks never matter; the scripts touch keys they build from the prefix, which needs a
// single Redis (not a cluster), as the rest of chatty's Redis use does.
import { Redis } from 'ioredis'
import type { PresenceStore } from '../port.ts'

export interface RedisPresenceOptions {
  url: string
  /** How long a heartbeat keeps a process alive. */
  ttlMs: number
  /** Default "chatty:presence:". */
  keyPrefix?: string
  /** Where connection errors are reported (ioredis reconnects by itself). */
  onError?: (error: Error) => void
}

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`

// KEYS: procs. ARGV: process id, TTL ms. 1 when the process was registered already.
const HEARTBEAT = `${NOW}
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if old then return 1 end
return 0`

// Lua: whether the user key names a live process other than pid (KEYS[1] is procs).
const ONLINE_ELSEWHERE = `
local function onlineElsewhere (key, pid)
  for _, other in ipairs(redis.call('SMEMBERS', key)) do
    if other ~= pid then
      local expiry = redis.call('ZSCORE', KEYS[1], other)
      if expiry and tonumber(expiry) > now then return true end
    end
  end
  return false
end`

// KEYS: procs, then one user key per user. ARGV: the process to leave out ('' for none).
// Returns the 1-based positions (among the users) of those online.
const ONLINE = `${NOW}${ONLINE_ELSEWHERE}
local out = {}
for i = 2, #KEYS do
  if onlineElsewhere(KEYS[i], ARGV[1]) then out[#out + 1] = i - 1 end
end
return out`

// KEYS: procs, the process's key, then one user key per user. ARGV: the process id, then the
// users. Adds the users to the process and answers as ONLINE does for the users with the process
// left out: one round trip for a batch of sockets opened.
const ADD = `${NOW}${ONLINE_ELSEWHERE}
local out = {}
redis.call('SADD', KEYS[2], unpack(ARGV, 2))
for i = 3, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[1])
  if onlineElsewhere(KEYS[i], ARGV[1]) then out[#out + 1] = i - 2 end
end
return out`

// KEYS: procs. ARGV: key prefix, one process id or '' for every expired one (at most 100 a call).
// Returns {processes dropped, {users they held}}.
const DROP = `
local dead
if ARGV[2] ~= '' then
  dead = { ARGV[2] }
else
  ${NOW}
  dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 100)
end
local users = {}
for _, pid in ipairs(dead) do
  redis.call('ZREM', KEYS[1], pid)
  local key = ARGV[1] .. 'proc:' .. pid
  for _, uid in ipairs(redis.call('SMEMBERS', key)) do
    redis.call('SREM', ARGV[1] .. 'user:' .. uid, pid)
    users[#users + 1] = uid
  end
  redis.call('DEL', key)
end
return { #dead, users }`

interface PresenceRedis extends Redis {
  presenceHeartbeat (procs: string, processId: string, ttlMs: number): Promise<number>
  presenceOnline (...args: Array<string | number>): Promise<number[]>
  presenceAdd (...args: Array<string | number>): Promise<number[]>
  presenceDrop (procs: string, prefix: string, processId: string): Promise<[number, string[]]>
}

export function createRedisPresence (options: RedisPresenceOptions): PresenceStore {
  const prefix = options.keyPrefix ?? 'chatty:presence:'
  const procs = `${prefix}procs`
  const userKey = (userId: string) => `${prefix}user:${userId.toLowerCase()}`
  const procKey = (processId: string) => `${prefix}proc:${processId}`
  const redis = new Redis(options.url, {
    // Presence calls come from socket open/close and heartbeats: fail fast, the next heartbeat repairs.
    maxRetriesPerRequest: 1,
    commandTimeout: 2000,
    connectionName: 'chatty-presence'
  }) as PresenceRedis
  redis.defineCommand('presenceHeartbeat', { numberOfKeys: 1, lua: HEARTBEAT })
  redis.defineCommand('presenceOnline', { lua: ONLINE })
  redis.defineCommand('presenceAdd', { lua: ADD })
  redis.defineCommand('presenceDrop', { numberOfKeys: 1, lua: DROP })
  redis.on('error', options.onError ?? (() => {}))

  return {
    async heartbeat (processId) {
      return await redis.presenceHeartbeat(procs, processId, options.ttlMs) === 1
    },

    async add (processId, userIds) {
      if (userIds.length === 0) return new Set()
      const users = userIds.map((userId) => userId.toLowerCase())
      const positions = await redis.presenceAdd(2 + users.length, procs, procKey(processId), ...users.map(userKey), processId, ...users)
      return new Set(positions.map((position) => userIds[position - 1]!))
    },

    async remove (processId, userIds) {
      if (userIds.length === 0) return
      const users = userIds.map((userId) => userId.toLowerCase())
      const multi = redis.multi().srem(procKey(processId), ...users)
      for (const userId of users) multi.srem(userKey(userId), processId)
      await multi.exec()
    },

    async online (userIds, options = {}) {
      if (userIds.length === 0) return new Set()
      const positions = await redis.presenceOnline(1 + userIds.length, procs, ...userIds.map(userKey), options.exceptProcess ?? '')
      return new Set(positions.map((position) => userIds[position - 1]!))
    },

    async removeProcess (processId) {
      const [, users] = await redis.presenceDrop(procs, prefix, processId)
      return users
    },

    async sweep () {
      const users: string[] = []
      for (;;) {
        const [dropped, batch] = await redis.presenceDrop(procs, prefix, '')
        users.push(...batch)
        if (dropped === 0) return users
      }
    },

    async close () {
      await redis.quit().catch(() => redis.disconnect())
    }
  }
}
