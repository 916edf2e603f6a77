// The dashboard page (/admin): one self-contained HTML page (the pages' shared head, then
// dashboard.html with its inline CSS and script) calling /admin/api, and the login that turns
// JOBS_ADMIN_TOKEN into an HttpOnly cookie for it.
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { AdminAuth } from './auth.ts'
import { ErrorSchema, LoginBodySchema, PageQuerySchema } from './schemas.ts'

/** The start every page shares; each page's file begins at its own <title>. */
const HEAD = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
`
const page = (file: string) => HEAD + readFileSync(new URL(file, import.meta.url), 'utf8')
const DASHBOARD = page('./dashboard.html')
const LOGIN = page('./login.html')

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

const HtmlSchema = Type.String({ description: 'An HTML page' })
const RedirectSchema = Type.Null({ description: 'See Other: to /admin' })

function sendPage (reply: FastifyReply, status: number, template: string, values: Record<string, string>): FastifyReply {
  // Only this response's inline style and script may run, and the page may only call its own API.
  const nonce = randomBytes(16).toString('base64')
  const html = template.replace(/\{\{(\w+)\}\}/g, (_, key: string) => key === 'nonce' ? nonce : escapeHtml(values[key] ?? ''))
  return reply.code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('content-security-policy', `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`)
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'same-origin')
    .header('x-content-type-options', 'nosniff')
    .header('x-frame-options', 'DENY')
    .send(html)
}

const isHttps = (request: FastifyRequest) => request.protocol === 'https'

const routes: FastifyPluginAsyncTypebox<{ auth: AdminAuth }> = async (fastify, { auth }) => {
  fastify.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)))
  })

  const loggedIn = (request: FastifyRequest, reply: FastifyReply) =>
    reply.header('set-cookie', auth.sessionCookie(isHttps(request))).header('cache-control', 'no-store').redirect('/admin', 303)
  const login = (reply: FastifyReply, message: string) => sendPage(reply, 401, LOGIN, { message })

  fastify.get('/', {
    schema: {
      summary: 'The queue dashboard; ?token= logs in and comes back without it',
      querystring: PageQuerySchema,
      response: { 200: HtmlSchema, 303: RedirectSchema, 401: HtmlSchema, 400: ErrorSchema }
    }
  }, async (request, reply) => {
    const { token } = request.query
    if (token !== undefined && auth.required) {
      // Moved into a cookie at once, so the token leaves the address bar and the history.
      return auth.isToken(token) ? loggedIn(request, reply) : login(reply, 'That token is not the admin token.')
    }
    if (!auth.allows(request.headers)) return login(reply, 'This dashboard needs the admin token (JOBS_ADMIN_TOKEN).')
    return sendPage(reply, 200, DASHBOARD, { auth: auth.required ? 'token' : 'open' })
  })

  fastify.post('/login', {
    schema: { summary: 'Log in with the admin token', body: LoginBodySchema, response: { 303: RedirectSchema, 401: HtmlSchema, 400: ErrorSchema, 403: ErrorSchema } }
  }, async (request, reply) => {
    return auth.isToken(request.body.token) ? loggedIn(request, reply) : login(reply, 'That token is not the admin token.')
  })

  fastify.post('/logout', {
    schema: { summary: 'End the page session', response: { 303: RedirectSchema, 403: ErrorSchema } }
  }, async (request, reply) => {
    return reply.header('set-cookie', auth.clearedCookie(isHttps(request))).redirect('/admin', 303)
  })
}

export default routes
