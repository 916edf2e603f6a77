// The session settings every connection chatty opens starts with, whatever the server, database
// or role defaults say. Timestamps are read as Postgres' text (the pool's `timestamp` parser,
// pg's `timestamptz` parser, the `created_at::text` of history pages and of the group commit),
// and that text follows the session's DateStyle: under 'SQL, DMY', 'German' or 'Postgres' a
// timestamp would not parse, or would parse to another time. ISO output is the same whatever
// the order part says; MDY is Postgres' own default for reading ambiguous input.
//
// The TimeZone is left alone: `timestamp` columns are written with timezone('utc', now()) and
// read without conversion, and `timestamptz` values travel with their offset, so no statement
// depends on the session's zone.

/** The settings, as a startup `options` value (the `-c` switches of the postgres command). */
export const SESSION_OPTIONS = '-c DateStyle=ISO,MDY'

/**
 * Form-encodes an `options` value the way pg's connection-string parser decodes it, leaving `=`
 * and `,` as they are: pg re-encodes a string holding a raw space with encodeURI and would turn
 * an escape such as %2C into the literal text.
 */
function formEncode (value: string): string {
  return encodeURIComponent(value).replaceAll('%20', '+').replaceAll('%3D', '=').replaceAll('%2C', ',')
}

/**
 * The connection string with SESSION_OPTIONS added to its `options` parameter (after the ones
 * it gives, so ours win; the startup parameter is sent once, so they must share it). Without
 * an `options` parameter, PGOPTIONS is what pg would have sent, so it is kept the same way. The
 * rest of the string is kept byte for byte. libpq's "socket-directory database" form carries no
 * parameters and is returned as it is.
 */
export function pinSessionSettings (connectionString: string, env: NodeJS.ProcessEnv = process.env): string {
  if (connectionString.startsWith('/')) return connectionString
  const hashAt = connectionString.indexOf('#')
  const beforeFragment = hashAt === -1 ? connectionString : connectionString.slice(0, hashAt)
  const fragment = hashAt === -1 ? '' : connectionString.slice(hashAt)
  const queryAt = beforeFragment.indexOf('?')
  const base = queryAt === -1 ? beforeFragment : beforeFragment.slice(0, queryAt)
  const params = queryAt === -1 ? [] : beforeFragment.slice(queryAt + 1).split('&').filter((param) => param !== '')
  const isOptions = (param: string) => new URLSearchParams(param).has('options')
  // pg takes the last of repeated parameters.
  const given = params.filter(isOptions).map((param) => param.includes('=') ? param.slice(param.indexOf('=') + 1) : '').at(-1)
  const inherited = given === undefined && env.PGOPTIONS !== undefined && env.PGOPTIONS !== '' ? formEncode(env.PGOPTIONS) : given
  const options = inherited === undefined || inherited === '' ? formEncode(SESSION_OPTIONS) : `${inherited}+${formEncode(SESSION_OPTIONS)}`
  return `${base}?${[...params.filter((param) => !isOptions(param)), `options=${options}`].join('&')}${fragment}`
}
