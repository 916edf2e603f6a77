// The Redis the suite runs against, found without a client library so every package can ask.
import { connect } from 'node:net'

function answersPing (url: string, timeoutMs: number): Promise<boolean> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port === '' ? 6379 : port) })
    const done = (answer: boolean) => { socket.destroy(); resolve(answer) }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')))
  })
}

/** REDIS_URL, else a Redis on 127.0.0.1:6379 if one answers, else undefined (tests skip). */
export async function findRedis (): Promise<string | undefined> {
  if (process.env.REDIS_URL !== undefined && process.env.REDIS_URL !== '') return process.env.REDIS_URL
  const url = 'redis://127.0.0.1:6379'
  return await answersPing(url, 500) ? url : undefined
}
