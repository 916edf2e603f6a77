// Errors of the database package.
export class MigrationError extends Error {
  override name = 'MigrationError'
}
