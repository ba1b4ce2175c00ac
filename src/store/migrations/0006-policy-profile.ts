/**
 * Each user's policy profile (roles, groups, method kinds as one key; src/core/policy/profile.ts), kept
 * on the row and indexed with the status, so the compliance summary counts users per profile with one
 * indexed GROUP BY over a million and a half users.
 */
import type { Kysely } from 'kysely';
import { EMPTY_PROFILE } from '../../core/policy/profile.js';
import { recomputeAllPolicyProfiles } from '../repositories/policy-profile.js';
import type { MigrationContext } from './index.js';

export async function up(db: Kysely<any>, context: MigrationContext): Promise<void> {
  await db.schema.alterTable('users').addColumn('policy_profile', 'text', (c) => c.notNull().defaultTo(EMPTY_PROFILE)).execute();
  await recomputeAllPolicyProfiles(db, context.dialect);
  await db.schema.createIndex('users_status_profile_idx').on('users').columns(['status', 'policy_profile']).execute();
}
