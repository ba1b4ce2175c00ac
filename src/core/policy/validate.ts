/**
 * Checking a policy against the directory before it is applied: every target names a role or group
 * that exists, and no combination of roles, groups and excludes leaves a user who could satisfy
 * nothing — required to use a strength of which no method is enabled for them. (Authelia's first-match
 * rule lists are easy to misread; intersecting requirements are safer, but only if an empty
 * intersection is caught here, with the combination that produces it.)
 */
import type { SecondFactorKind } from '../methods/registry.js';
import type { CompiledPolicy, PolicyProblem, TargetSet } from './document.js';
import { appliesTo, enabledMethods, type PolicySubject } from './evaluate.js';
import { appliesToApplications, clientKeyOf, hasApplicationRequirements, isClientTarget, namedApplications, OTHER_APPLICATION } from './applications.js';

export interface DirectoryShape {
  roles: ReadonlyArray<{ name: string; elevated: boolean }>;
  groups: readonly string[];
  /** The policy keys of the registered applications; when given, a `client:KEY` must name one of them. */
  clients?: readonly string[];
}

/** More atoms than this would be more than 65,536 combinations to check. */
export const MAX_COMBINATION_ATOMS = 16;

function targetSets(policy: CompiledPolicy): Array<{ path: string; set: TargetSet }> {
  const sets: Array<{ path: string; set: TargetSet }> = [];
  for (const [kind, entry] of Object.entries(policy.methods)) {
    if (!entry) continue;
    sets.push({ path: `methods.${kind}`, set: entry });
    entry.numberDigitsTargets.forEach((t, i) => sets.push({ path: `methods.${kind}.settings.targets[${i}]`, set: t }));
  }
  policy.requirements.forEach((r, i) => sets.push({ path: `requirements[${i}]`, set: r }));
  policy.registration.forEach((r, i) => sets.push({ path: `registration[${i}]`, set: r }));
  policy.campaigns.forEach((c, i) => sets.push({ path: `campaigns[${i}]`, set: c }));
  return sets;
}

/** What a user in this combination cannot satisfy, if anything, in plain words. */
export function unsatisfiable(policy: CompiledPolicy, subject: Pick<PolicySubject, 'roles' | 'groups' | 'elevated'>): string[] {
  const enabled = [...enabledMethods(policy, subject)].filter((k) => k !== 'tap') as SecondFactorKind[];
  const problems: string[] = [];
  // Signing in to Portcullis itself, then to each application a requirement names (and to any other):
  // someone who uses an application must be able to meet its requirements with those of Portcullis.
  const sightings: Array<{ applications: string[] | undefined; where: string }> = [{ applications: undefined, where: '' }];
  if (hasApplicationRequirements(policy)) {
    for (const key of namedApplications(policy)) sightings.push({ applications: [key], where: ` to sign in to client:${key}` });
    sightings.push({ applications: [OTHER_APPLICATION], where: ' to sign in to another application' });
  }
  const said = new Set<string>();
  for (const { applications, where } of sightings) {
    const required = policy.requirements.filter((r) => r.mode === 'enforce' && appliesTo(r, subject) && appliesToApplications(r, applications));
    let candidates = new Set(enabled);
    for (const requirement of required) candidates = new Set([...candidates].filter((k) => requirement.methods.has(k)));
    const ids = required.map((r) => r.id).join(',');
    if (required.length > 0 && candidates.size === 0 && !said.has(ids)) {
      said.add(ids);
      problems.push(
        `they must meet ${required.map((r) => `${r.id} (${r.strength})`).join(' and ')}${where}, but ${
          enabled.length ? `only ${enabled.join(', ')} ${enabled.length === 1 ? 'is' : 'are'} enabled for them` : 'no second method is enabled for them'
        }, and no enabled method meets all of ${required.length === 1 ? 'it' : 'them'}`,
      );
    }
  }
  const registration = policy.registration.filter((r) => r.mode === 'enforce' && appliesTo(r, subject));
  if (registration.length > 0 && enabled.length === 0) {
    problems.push(`they must register a second method (${registration.map((r) => r.id).join(', ')}), but none is enabled for them`);
  }
  return problems;
}

function describe(subject: Pick<PolicySubject, 'roles' | 'groups' | 'elevated'>): string {
  const parts: string[] = [];
  if (subject.roles.length) parts.push(`with the role${subject.roles.length === 1 ? '' : 's'} ${subject.roles.join(', ')}`);
  else parts.push(subject.elevated ? 'with an elevated role' : 'with no elevated role');
  if (subject.groups.length) parts.push(`in the group${subject.groups.length === 1 ? '' : 's'} ${subject.groups.join(', ')}`);
  return `Users ${parts.join(' and ')}`;
}

export function validatePolicy(policy: CompiledPolicy, directory: DirectoryShape): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  const roleNames = new Map(directory.roles.map((r) => [r.name, r.elevated]));
  const groupNames = new Set(directory.groups);
  const mentionedRoles = new Set<string>();
  const mentionedGroups = new Set<string>();
  const clientKeys = directory.clients ? new Set(directory.clients) : null;
  for (const { path, set } of targetSets(policy)) {
    for (const target of [...set.include, ...set.exclude]) {
      if (isClientTarget(target)) {
        const key = clientKeyOf(target);
        if (clientKeys && !clientKeys.has(key)) problems.push({ path, message: `names client:${key}, but no registered client has the key ${key} (see \`portcullis client list\`)`, kind: 'unknown-client' });
      } else if (target.startsWith('role:')) {
        const name = target.slice(5);
        if (!roleNames.has(name)) problems.push({ path, message: `names the role ${name}, which does not exist` });
        else mentionedRoles.add(name);
      } else if (target.startsWith('group:')) {
        const name = target.slice(6);
        if (!groupNames.has(name)) problems.push({ path, message: `names the group ${name}, which does not exist` });
        else mentionedGroups.add(name);
      }
    }
  }
  if (problems.length) return problems;

  const atoms = [...[...mentionedRoles].map((r) => ({ type: 'role' as const, name: r })), ...[...mentionedGroups].map((g) => ({ type: 'group' as const, name: g }))];
  if (atoms.length > MAX_COMBINATION_ATOMS) {
    return [{ path: '', message: `names ${atoms.length} roles and groups; at most ${MAX_COMBINATION_ATOMS} can be checked in every combination` }];
  }
  // An elevated role that no target names can still make a user elevated.
  const otherElevated = directory.roles.some((r) => r.elevated && !mentionedRoles.has(r.name));
  const reported = new Set<string>();
  for (let mask = 0; mask < 1 << atoms.length; mask += 1) {
    const chosen = atoms.filter((_, i) => mask & (1 << i));
    const roles = chosen.filter((a) => a.type === 'role').map((a) => a.name);
    const groups = chosen.filter((a) => a.type === 'group').map((a) => a.name);
    const elevatedByNamed = roles.some((r) => roleNames.get(r));
    for (const elevated of elevatedByNamed ? [true] : otherElevated ? [false, true] : [false]) {
      const subject = { roles, groups, elevated };
      for (const message of unsatisfiable(policy, subject)) {
        if (reported.has(message)) continue;
        reported.add(message);
        problems.push({ path: 'requirements', message: `${describe(subject)} could satisfy nothing: ${message}` });
      }
    }
  }
  return problems;
}
