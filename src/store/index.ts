/**
 * The store: the database and one repository per concept, built on a connection or a transaction.
 */
import type { Kysely, Transaction } from 'kysely';
import type { Database, Dialect } from './database.js';
import { createAuditRepository } from './repositories/audit.js';
import { createChallengeRepository } from './repositories/challenges.js';
import { createGroupRepository } from './repositories/groups.js';
import { createMethodRepository } from './repositories/methods.js';
import { createOrganisationRepository } from './repositories/organisations.js';
import { createPolicyRepository } from './repositories/policy.js';
import { createPushRepository } from './repositories/push.js';
import { createRoleRepository } from './repositories/roles.js';
import { createSessionRepository } from './repositories/sessions.js';
import { createSignInFlowRepository } from './repositories/sign-in-flows.js';
import { createUserTokenRepository } from './repositories/user-tokens.js';
import { createUserRepository } from './repositories/users.js';
import type { DatabaseSchema } from './schema.js';
import { inOneTransaction } from './write-unit.js';

export interface Repositories {
  organisations: ReturnType<typeof createOrganisationRepository>;
  users: ReturnType<typeof createUserRepository>;
  roles: ReturnType<typeof createRoleRepository>;
  groups: ReturnType<typeof createGroupRepository>;
  methods: ReturnType<typeof createMethodRepository>;
  challenges: ReturnType<typeof createChallengeRepository>;
  push: ReturnType<typeof createPushRepository>;
  policy: ReturnType<typeof createPolicyRepository>;
  sessions: ReturnType<typeof createSessionRepository>;
  signInFlows: ReturnType<typeof createSignInFlowRepository>;
  userTokens: ReturnType<typeof createUserTokenRepository>;
  audit: ReturnType<typeof createAuditRepository>;
}

export function createRepositories(db: Kysely<DatabaseSchema> | Transaction<DatabaseSchema>): Repositories {
  return {
    organisations: createOrganisationRepository(db),
    users: createUserRepository(db),
    roles: createRoleRepository(db),
    groups: createGroupRepository(db),
    methods: createMethodRepository(db),
    challenges: createChallengeRepository(db),
    push: createPushRepository(db),
    policy: createPolicyRepository(db),
    sessions: createSessionRepository(db),
    signInFlows: createSignInFlowRepository(db),
    userTokens: createUserTokenRepository(db),
    audit: createAuditRepository(db),
  };
}

export interface Store extends Repositories {
  database: Database;
  dialect: Dialect;
  /**
   * Runs `work` in one transaction with repositories bound to it: all of it is written, or none. The
   * transaction itself is given too, for what takes one (`Delivery.enqueue`).
   */
  transaction<T>(work: (repositories: Repositories, trx: Transaction<DatabaseSchema>) => Promise<T>): Promise<T>;
  /**
   * Runs `work`, keeping the OpenID Connect adapter's writes and the audit appends it makes (outside a
   * transaction of their own), then writes them in one transaction before returning (src/store/write-unit.ts).
   */
  inOneTransaction<T>(work: () => Promise<T>): Promise<T>;
  /**
   * Runs `work` with the statements it issues together sent together, and the writes nobody reads back
   * started alongside them and waited for before it returns (src/store/pipeline.ts). What `work` decides
   * is answered after it returns, never from inside it.
   */
  pipelined<T>(work: () => Promise<T>): Promise<T>;
}

export function createStore(database: Database): Store {
  return {
    ...createRepositories(database.db),
    database,
    dialect: database.dialect,
    transaction: (work) => database.db.transaction().execute((trx) => work(createRepositories(trx), trx)),
    inOneTransaction: (work) => inOneTransaction(database.db, work),
    pipelined: (work) => database.pipelined(work),
  };
}
