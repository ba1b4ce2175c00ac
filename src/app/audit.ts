import type { AuditEvent } from '../core/audit.js';
import type { Repositories } from '../store/index.js';

/** Appends an audit event. Audit writes are part of the change they record (same transaction where there is one). */
export async function recordAudit(repositories: Pick<Repositories, 'audit'>, event: AuditEvent): Promise<void> {
  await repositories.audit.append(event);
}
