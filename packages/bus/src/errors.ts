// Errors the bus raises itself; broker errors (pg, ioredis) pass through unchanged.

export class BusClosedError extends Error {
  override name = 'BusClosedError'
  constructor () { super('the bus is closed') }
}
