/**
 * What the method policy asks of a sign-in to one application (issue #13 point 4; docs/oidc.md#applications-in-the-policy):
 * the requirements that target it (`client:KEY`, src/core/policy/applications.ts) and apply to this person,
 * and the authentication context class they make essential at the interaction.
 *
 * A requirement is in force from its effective date plus its grace, in `enforce` mode, unless the person
 * has a live exception from it; before then it does not block. A `report-only` one never blocks: the
 * interaction only audits that it would have. Requirements without a client target are not here: they
 * apply to the Portcullis sign-in itself, which the interaction already relies on.
 */
import type { CompiledPolicy, CompiledRequirement } from '../policy/document.js';
import { applicationScope, appliesToApplications } from '../policy/applications.js';
import { appliesTo, type PolicySubject } from '../policy/evaluate.js';
import { type Acr, acrForStrength, strongerAcr } from './acr.js';

export interface ApplicationRequirement {
  id: string;
  acr: Acr;
}

export interface ApplicationDemand {
  /** The strongest class the requirements in force ask (null: none). */
  acr: Acr | null;
  enforced: ApplicationRequirement[];
  /** Report-only requirements past their date and grace: audited when unmet, never blocking. */
  reportOnly: ApplicationRequirement[];
}

export function applicationDemand(
  policy: Pick<CompiledPolicy, 'requirements'>,
  subject: Pick<PolicySubject, 'roles' | 'groups' | 'elevated' | 'exceptions'>,
  applicationKey: string,
  now: Date,
): ApplicationDemand {
  const t = now.getTime();
  const exempt = (r: CompiledRequirement) => subject.exceptions.some((e) => e.requirementId === r.id && e.until.getTime() > t);
  const demand: ApplicationDemand = { acr: null, enforced: [], reportOnly: [] };
  for (const requirement of policy.requirements) {
    if (!applicationScope(requirement) || !appliesToApplications(requirement, [applicationKey]) || !appliesTo(requirement, subject)) continue;
    if (t < requirement.graceUntil.getTime() || exempt(requirement)) continue;
    const acr = acrForStrength(requirement.methods);
    if (acr === null) continue;
    if (requirement.mode === 'report-only') {
      demand.reportOnly.push({ id: requirement.id, acr });
    } else {
      demand.enforced.push({ id: requirement.id, acr });
      demand.acr = strongerAcr(demand.acr, acr);
    }
  }
  return demand;
}
