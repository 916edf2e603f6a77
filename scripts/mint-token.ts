// `pnpm mint-token <user-uuid> [--ttl 3600]`: mints a development HS256 token with JWT_SECRET, for
// trying AUTH_MODE=jwt locally. Production tokens come from your identity provider. The token
// carries iat and exp, and its lifetime must be within the api's JWT_MAX_AGE_S (default 86400).
import { parseArgs } from 'node:util'
import { SignJWT } from 'jose'

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { ttl: { type: 'string', default: '3600' }, issuer: { type: 'string' }, audience: { type: 'string' } }
})
const [userId] = positionals
const secret = process.env.JWT_SECRET
if (userId === undefined || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(userId)) {
  console.error('usage: pnpm mint-token <user-uuid> [--ttl seconds] [--issuer iss] [--audience aud]')
  process.exit(2)
}
if (secret === undefined || secret.length < 32) {
  console.error('JWT_SECRET must be set (at least 32 characters), the same as the api\'s')
  process.exit(2)
}
const ttl = Number(values.ttl)
const maxAge = Number.parseInt(process.env.JWT_MAX_AGE_S ?? '', 10) || 86_400
if (!Number.isInteger(ttl) || ttl < 1 || ttl > maxAge) {
  console.error(`--ttl must be a whole number of seconds from 1 to ${maxAge} (JWT_MAX_AGE_S): the api refuses longer-lived tokens`)
  process.exit(2)
}
let jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(userId).setIssuedAt().setExpirationTime(`${ttl}s`)
if (values.issuer !== undefined) jwt = jwt.setIssuer(values.issuer)
if (values.audience !== undefined) jwt = jwt.setAudience(values.audience)
console.log(await jwt.sign(new TextEncoder().encode(secret)))
