// The replay of a join with since_seq: the entries (messages, edits, deletes) stored after the
// client's position, read a page at a time within the socket's and the process's byte budgets.
import { entriesSince, type ConversationEntry } from '@chatty/chat'
import { entryFrame } from '../frames.ts'
import { camelCaseFrame } from '../../dialect.ts'
import type { FrameContext } from '../context.ts'
import type { Membership } from '../membership.ts'

/** Entries (messages, edits, deletes) read per database round trip when replaying after since_seq. */
const REPLAY_PAGE = 200
/** The most bytes of frames a replay reads at once (a quarter of the socket's budget when less). */
const REPLAY_PAGE_BYTES = 256 * 1024

/** True when `promise` settles within `ms`, false when it does not. */
async function settlesWithin (promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<boolean>((resolve) => { timer = setTimeout(resolve, ms, false) })
  try {
    return await Promise.race([promise.then(() => true), late])
  } finally {
    clearTimeout(timer)
  }
}

/** Gives replay bytes back to the process (none once the socket closed and gave back all). */
export function releaseReplay (session: FrameContext, bytes: number): void {
  const held = Math.min(bytes, session.replayHeld)
  session.replayHeld -= held
  session.context.replayBudget.give(held)
}

/** Replays the entries after membership.lastSent up to `until`, after this socket's other replays. */
export async function replay (session: FrameContext, membership: Membership, until: number): Promise<void> {
  const previous = session.replayTail
  let done!: () => void
  const mine = new Promise<void>((resolve) => { done = resolve })
  session.replayTail = mine
  try {
    await previous
    await replayPages(session, membership, until)
  } finally {
    done()
    if (session.replayTail === mine) session.replayTail = undefined
  }
}

/**
 * Reads a page only when the socket has room for it (its last page written out once it holds
 * half its budget) and the process has (replayBudget), each waited for at most drainTimeoutMs:
 * a socket that does not read holds at most its budget, and is then cut.
 */
async function replayPages (session: FrameContext, membership: Membership, until: number): Promise<void> {
  const { context, socket } = session
  const max = context.maxBufferedBytes
  const pageBytes = Math.min(REPLAY_PAGE_BYTES, Math.floor(max / 4), context.replayBudget.limit)
  let written: Promise<void> | undefined
  while (membership.lastSent < until) {
    if (written !== undefined && session.queued() > max / 2 && !await settlesWithin(written, context.drainTimeoutMs)) {
      session.cutSlowConsumer(`did not take its replay within ${context.drainTimeoutMs} ms`)
      return
    }
    if (session.closed) return
    const estimate = Math.max(1, Math.min(pageBytes, max - session.queued()))
    if (!await context.replayBudget.take(estimate, context.drainTimeoutMs)) {
      session.cutSlowConsumer(`found no room for its replay within ${context.drainTimeoutMs} ms`, 'server busy')
      return
    }
    session.replayHeld += estimate
    session.reading = estimate
    let page: ConversationEntry[]
    try {
      page = await entriesSince(session.chat.db, membership.conversationId, membership.lastSent, REPLAY_PAGE, estimate)
    } finally {
      session.reading = 0
    }
    if (session.closed || page.length === 0 || socket.readyState !== socket.OPEN) {
      releaseReplay(session, estimate)
      return
    }
    const frames = session.dialect === 'camelCase' ? page.map((entry) => camelCaseFrame(entryFrame(entry))) : page.map(entryFrame)
    let bytes = 0
    for (const data of frames) bytes += Buffer.byteLength(data)
    // The estimate is near, not exact: the process's count takes the page's real size.
    if (bytes > estimate) {
      context.replayBudget.takeMore(bytes - estimate)
      session.replayHeld += bytes - estimate
    } else {
      releaseReplay(session, estimate - bytes)
    }
    // ws calls back once the page's last frame is written to the TCP socket, or with an error
    // when it closes; the page's bytes are given back then.
    written = new Promise((resolve) => {
      const last = frames.length - 1
      for (let i = 0; i < last; i++) socket.send(frames[i]!, { binary: false })
      socket.send(frames[last]!, { binary: false }, () => {
        releaseReplay(session, bytes)
        resolve()
      })
    })
    membership.lastSent = page.at(-1)!.seq
  }
}
