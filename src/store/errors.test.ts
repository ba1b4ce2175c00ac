import { describe, expect, it } from 'vitest';
import { isDependencyUnavailable } from './errors.js';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('isDependencyUnavailable (issue #17: a 503, not a 500, when the database or Redis is away)', () => {
  it.each([
    ['a refused connection', withCode('ECONNREFUSED')],
    ['a reset connection', withCode('ECONNRESET')],
    ['PostgreSQL shutting down (57P01 admin_shutdown)', withCode('57P01', 'terminating connection due to administrator command')],
    ['PostgreSQL starting up (57P03)', withCode('57P03')],
    ['a PostgreSQL connection exception (class 08)', withCode('08006')],
    ['too many connections (53300)', withCode('53300')],
    ['pg: a connection that died', new Error('Connection terminated unexpectedly')],
    ['pg: no connection in time', new Error('timeout exceeded when trying to connect')],
    ['ioredis: retries used up', Object.assign(new Error('Reached the max retries per request limit (which is 2).'), { name: 'MaxRetriesPerRequestError' })],
    ['ioredis: a closed connection', new Error('Connection is closed.')],
    ['SQLite busy', withCode('SQLITE_BUSY', 'database is locked')],
    ['happy eyeballs: every address refused', Object.assign(new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')]), {})],
  ])('%s', (_name, error) => {
    expect(isDependencyUnavailable(error)).toBe(true);
  });

  it.each([
    ['a bug', new TypeError('cannot read properties of undefined')],
    ['a unique violation', withCode('23505')],
    ['a syntax error in SQL', withCode('42601')],
    ['a constraint on SQLite', withCode('SQLITE_CONSTRAINT_UNIQUE')],
    ['not an error', 'ECONNREFUSED'],
    ['null', null],
    ['an empty AggregateError', new AggregateError([])],
  ])('not %s', (_name, error) => {
    expect(isDependencyUnavailable(error)).toBe(false);
  });
});
