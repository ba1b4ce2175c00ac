/**
 * Queries on the sign-in path, built with Kysely's query builder and compiled once per database, then
 * run with new values: Kysely's recipe "splitting query building and execution", with the values
 * filled in at run time. Building and compiling the same tree again on every call was about a sixth of a
 * sign-in's CPU outside argon2 (docs/performance.md).
 *
 * `build` receives placeholders in place of the values. Each must reach the SQL unchanged as a bound
 * parameter (not transformed, not inlined): that is checked when the query is first compiled, so a
 * query written otherwise fails the first time it runs, in every test that reaches it.
 */
import type { Compilable, CompiledQuery, Kysely, QueryResult } from 'kysely';
import type { DatabaseSchema } from './schema.js';

type Db = Kysely<DatabaseSchema>;

const MARK = '\u0000portcullis-parameter-';
const placeholder = (index: number) => `${MARK}${index}\u0000`;

interface Template {
  compiled: CompiledQuery;
  /** For each bound parameter: the index of the argument it takes, or -1 for a constant kept as built. */
  slots: number[];
}

export class PreparedQueryError extends Error {}

/**
 * The SQL of every query compiled here, with a name for it: on PostgreSQL each is sent as a named
 * statement (src/store/database.ts), parsed and planned once per connection rather than on every call.
 * Only these are named: they are the sign-in path's, few and fixed by the code, so the map stays small,
 * and a statement whose best plan depends on its values (a search) is never held to one plan.
 */
const statementNames = new Map<string, string>();

/** The name a statement is prepared under on PostgreSQL, or undefined to send it unnamed. */
export function statementName(sql: string): string | undefined {
  return statementNames.get(sql);
}

/**
 * A query taking `arity` values. The returned function runs it on `db` (a Kysely instance or a
 * transaction: the compiled SQL depends only on the dialect, so transactions share it).
 */
export function prepared<Row>(arity: number, build: (db: Db, ...values: string[]) => Compilable<Row>) {
  const templates = new WeakMap<object, Template>();
  const compile = (db: Db): Template => {
    const names = Array.from({ length: arity }, (_, i) => placeholder(i));
    const compiled = build(db, ...names).compile();
    const slots = compiled.parameters.map((value) => (typeof value === 'string' && value.startsWith(MARK) ? names.indexOf(value) : -1));
    const used = new Set(slots);
    if (slots.some((slot, i) => slot === -1 && typeof compiled.parameters[i] === 'string' && (compiled.parameters[i] as string).includes(MARK))) {
      throw new PreparedQueryError(`a placeholder was changed before it reached the SQL: ${compiled.sql}`);
    }
    for (let i = 0; i < arity; i++) {
      if (!used.has(i)) throw new PreparedQueryError(`value ${i} is not a bound parameter of: ${compiled.sql}`);
    }
    if (compiled.sql.includes(MARK)) throw new PreparedQueryError(`a placeholder was inlined into: ${compiled.sql}`);
    if (!statementNames.has(compiled.sql)) statementNames.set(compiled.sql, `portcullis_${statementNames.size + 1}`);
    return { compiled, slots };
  };
  return async (db: Db, ...values: unknown[]): Promise<QueryResult<Row>> => {
    if (values.length !== arity) throw new PreparedQueryError(`expected ${arity} values, got ${values.length}`);
    // The adapter is made once per Kysely instance and shared by its transactions. getExecutor() is in
    // Kysely's public typings but documented as internal: a Kysely upgrade that changes it fails
    // src/store/prepared.test.ts and every integration suite.
    const key = db.getExecutor().adapter;
    let template = templates.get(key);
    if (!template) {
      template = compile(db);
      templates.set(key, template);
    }
    const { compiled, slots } = template;
    const parameters = slots.map((slot, i) => (slot === -1 ? compiled.parameters[i] : values[slot]));
    return db.executeQuery<Row>({ ...compiled, parameters });
  };
}
