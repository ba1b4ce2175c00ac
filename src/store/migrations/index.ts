/**
 * Migrations, in order. Each is written once for both dialects (Kysely's schema builder) and runs in
 * CI on SQLite and PostgreSQL. Applied at start-up and by `portcullis migrate`; Kysely's migrator
 * takes a lock, so several nodes starting at once apply each migration once.
 */
import { Migrator, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import type { Dialect } from '../database.js';
import * as foundation from './0001-foundation.js';
import * as outbox from './0002-outbox.js';
import * as secondFactors from './0003-second-factors.js';
import * as push from './0004-push.js';
import * as policy from './0005-policy.js';
import * as policyProfile from './0006-policy-profile.js';
import * as attemptLeases from './0007-attempt-leases.js';
import * as oidcProvider from './0008-oidc-provider.js';
import * as helpFeedback from './0009-help-feedback.js';
import * as oidcClients from './0010-oidc-clients.js';
import * as oidcGrantAccounts from './0011-oidc-grant-accounts.js';
import * as oidcClientKeys from './0012-oidc-client-keys.js';
import * as auditChain from './0013-audit-chain.js';
import * as methodData from './0014-method-data.js';
import * as adminTokens from './0015-admin-tokens.js';
import * as adminClients from './0016-admin-clients.js';
import * as complianceSnapshots from './0017-compliance-snapshots.js';
import * as clientIdTokenAlg from './0018-client-id-token-alg.js';
import * as userSearchIndexes from './0019-user-search-indexes.js';
import * as oidcPartialIndexes from './0020-oidc-partial-indexes.js';

export interface MigrationContext {
  dialect: Dialect;
}

interface MigrationModule {
  up(db: Kysely<any>, context: MigrationContext): Promise<void>;
}

const migrations: Record<string, MigrationModule> = {
  '0001-foundation': foundation,
  '0002-outbox': outbox,
  '0003-second-factors': secondFactors,
  '0004-push': push,
  '0005-policy': policy,
  '0006-policy-profile': policyProfile,
  '0007-attempt-leases': attemptLeases,
  '0008-oidc-provider': oidcProvider,
  '0009-help-feedback': helpFeedback,
  '0010-oidc-clients': oidcClients,
  '0011-oidc-grant-accounts': oidcGrantAccounts,
  '0012-oidc-client-keys': oidcClientKeys,
  '0013-audit-chain': auditChain,
  '0014-method-data': methodData,
  '0015-admin-tokens': adminTokens,
  '0016-admin-clients': adminClients,
  '0017-compliance-snapshots': complianceSnapshots,
  '0018-client-id-token-alg': clientIdTokenAlg,
  '0019-user-search-indexes': userSearchIndexes,
  '0020-oidc-partial-indexes': oidcPartialIndexes,
};

class StaticProvider implements MigrationProvider {
  constructor(private readonly context: MigrationContext) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return Object.fromEntries(
      Object.entries(migrations).map(([name, module]) => [name, { up: (db: Kysely<any>) => module.up(db, this.context) }]),
    );
  }
}

export interface MigrationReport {
  applied: string[];
}

export async function migrateToLatest(db: Kysely<any>, dialect: Dialect): Promise<MigrationReport> {
  const migrator = new Migrator({
    db,
    provider: new StaticProvider({ dialect }),
    migrationTableName: 'portcullis_migrations',
    migrationLockTableName: 'portcullis_migrations_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`Migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message ?? String(error)}`, { cause: error });
  }
  return { applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}
