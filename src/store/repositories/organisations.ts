import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { PortcullisError } from '../../core/errors.js';
import { isUniqueViolation } from '../errors.js';
import type { DatabaseSchema, OrganisationRow } from '../schema.js';

export function normaliseOrganisationName(name: string): string {
  return name.trim().normalize('NFC').toLowerCase();
}

export function createOrganisationRepository(db: Kysely<DatabaseSchema>) {
  return {
    async create(name: string, now: Date): Promise<OrganisationRow> {
      const row = { id: randomUUID(), name: name.trim(), name_normalised: normaliseOrganisationName(name), created_at: now.toISOString() };
      try {
        await db.insertInto('organisations').values(row).execute();
      } catch (error) {
        if (isUniqueViolation(error)) throw new PortcullisError('organisation-exists', { name: row.name });
        throw error;
      }
      return row;
    },
    async findByName(name: string): Promise<OrganisationRow | undefined> {
      return db.selectFrom('organisations').selectAll().where('name_normalised', '=', normaliseOrganisationName(name)).executeTakeFirst();
    },
    async findById(id: string): Promise<OrganisationRow | undefined> {
      return db.selectFrom('organisations').selectAll().where('id', '=', id).executeTakeFirst();
    },
    async list(): Promise<Array<OrganisationRow & { users: number }>> {
      const rows = await db
        .selectFrom('organisations as o')
        .leftJoin('users as u', 'u.organisation_id', 'o.id')
        .select(['o.id', 'o.name', 'o.name_normalised', 'o.created_at'])
        .select((eb) => eb.fn.count<number | string>('u.id').as('users'))
        .groupBy(['o.id', 'o.name', 'o.name_normalised', 'o.created_at'])
        .orderBy('o.name_normalised')
        .execute();
      return rows.map((r) => ({ ...r, users: Number(r.users) }));
    },
  };
}

export type OrganisationRepository = ReturnType<typeof createOrganisationRepository>;
