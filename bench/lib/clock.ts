// One clock for every bench process: CLOCK_MONOTONIC in milliseconds (fractional). Latency is
// taken between processes (a sender in one load process, a receiver in another, the HTTP load
// generator and the websocket listeners), so it must not depend on each process's time origin.
export const monoMs = (): number => Number(process.hrtime.bigint()) / 1e6
