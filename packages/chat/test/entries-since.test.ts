// entriesSince with a byte cap: pages of large messages stay small, and reading page after page
// still yields every entry (messages, edits, deletes) once, in seq order.
import t from 'tap'
import { createDb } from '@chatty/db'
import { testDatabase, users } from '@chatty/db/testing'
import { createChat, createConversation, deleteMessage, editMessage, entriesSince, sendMessage } from '../src/index.ts'

const { alice, bob } = users

t.test('pages cut at about maxBytes cover every entry once, in seq order, with edits and deletes interleaved', async (t) => {
  const { url } = await testDatabase(t)
  const { db, destroy } = createDb(url, { max: 5 })
  t.teardown(destroy)
  const chat = createChat({ db })
  const { id: conversationId } = await createConversation(db, { participantIds: [alice, bob] })
  const ids: string[] = []
  for (let i = 0; i < 30; i++) {
    // Every third message is large (about 3.5 KB); the rest are small.
    const body = i % 3 === 0 ? `${i} ${'x'.repeat(3500)}` : `${i}`
    ids.push((await sendMessage(chat, { conversationId, senderId: alice, body })).message.id)
    if (i % 4 === 3) await editMessage(chat, { conversationId, messageId: ids[i - 1]!, senderId: alice, body: `edited ${i} ${'y'.repeat(3000)}` })
    if (i % 7 === 6) await deleteMessage(chat, { conversationId, messageId: ids[i - 3]!, senderId: alice })
  }
  const all = await entriesSince(db, conversationId, 0, 1000)
  t.same(all.map((entry) => entry.seq), Array.from({ length: all.length }, (_, i) => i + 1), 'uncapped: every seq')

  const maxBytes = 5000
  const pages: number[][] = []
  for (let since = 0; ;) {
    const page = await entriesSince(db, conversationId, since, 200, maxBytes)
    if (page.length === 0) break
    pages.push(page.map((entry) => entry.seq))
    since = page.at(-1)!.seq
    // A page goes past maxBytes by at most its last row of each kind (two rows of about 4 KB).
    const bytes = page.reduce((sum, entry) => sum + (entry.message.body?.length ?? 0), 0)
    t.ok(bytes < maxBytes + 2 * 4096, `a page of ${bytes} body bytes`)
  }
  t.same(pages.flat(), all.map((entry) => entry.seq), 'the pages together: every entry once, in order')
  t.ok(pages.length > 5, `${pages.length} pages`)
})
