/**
 * The method policy as a document (YAML or JSON): which methods are enabled for whom, the named
 * strengths, the requirements (who must use which strength from when), the registration requirement
 * (everyone has a second method by a date) and the registration campaigns (nudges before a date).
 * Parsed and checked here, purely; `compilePolicy` turns it into what evaluation reads.
 *
 * Targets: `all`, `elevated` (anyone holding a role marked elevated), `role:NAME`, `group:NAME`, and, in
 * requirements only, `client:KEY` (sign-ins to one application: ./applications.ts, issue #13 point 4).
 * Requirements combine by intersection: everything that applies to a user holds at once.
 */
import { z } from 'zod';
import { isSecondFactorKind, kindsMeeting, methodDefinitions, secondFactorKinds, type SecondFactorKind } from '../methods/registry.js';
import { zonedToInstant, isValidTimeZone } from './dates.js';

/** `client:KEY`: sign-ins to the application with that policy key (`client add --key`). */
export const isClientTarget = (target: string): boolean => target.startsWith('client:');

export const POLICY_METHODS = secondFactorKinds as readonly [SecondFactorKind, ...SecondFactorKind[]];
export type PolicyMethod = SecondFactorKind;
/** The kinds a strength or a campaign can name: all but those in no strength (a pass). */
const STRENGTH_METHODS = secondFactorKinds.filter((k) => methodDefinitions[k].meets.length > 0) as [SecondFactorKind, ...SecondFactorKind[]];
const CAMPAIGN_METHODS = secondFactorKinds.filter((k) => methodDefinitions[k].campaignable) as [SecondFactorKind, ...SecondFactorKind[]];

/** Built-in strengths (DESIGN.md); a policy may add its own. TAP is a bootstrap credential, in none. */
export const BUILT_IN_STRENGTHS: Record<string, readonly SecondFactorKind[]> = {
  mfa: kindsMeeting('mfa'),
  'app-push': kindsMeeting('app-push'),
  'phishing-resistant': kindsMeeting('phishing-resistant'),
};

const target = z
  .string()
  .trim()
  .regex(/^(all|elevated|role:[a-z0-9][a-z0-9-]*|group:.+|client:[a-z0-9][a-z0-9-]{0,63})$/, 'must be all, elevated, role:NAME, group:NAME or client:KEY');

const targets = {
  include: z.array(target).min(1, 'must name at least one target'),
  exclude: z.array(target).default([]),
};

const dateText = z.string().trim().regex(/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2})?$/, 'must be a date like 2023-11-30 (or 2023-11-30T09:00)');

const id = z.string().trim().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'must be lower-case letters, digits and dashes');

/** An authenticator model: its AAGUID (WebAuthn L3 §6.5.1), as the passkey's attested data gives it. */
const aaguid = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'must be an AAGUID like cb69481e-8ff7-4039-93ec-0a2729a154a8');

/**
 * A strength naming its methods and, for some of them, the only authenticator models that count
 * (issue #14: "only these security keys for global administrators"): `{ methods: [passkey], models:
 * { passkey: [AAGUID, …] } }`.
 */
const strengthWithModels = z
  .object({
    methods: z.array(z.enum(STRENGTH_METHODS)),
    models: z.partialRecord(z.enum(STRENGTH_METHODS), z.array(aaguid).min(1, 'must list at least one model')),
  })
  .strict();

const pushTargetSetting = z.object({ ...targets, numberDigits: z.number().int().min(2).max(8) }).strict();

const methodEntry = z
  .object({
    enabled: z.boolean(),
    include: z.array(target).default(['all']),
    exclude: z.array(target).default([]),
    settings: z
      .object({
        /** push: digits in the number shown, and per-target overrides (the first match wins). */
        numberDigits: z.number().int().min(2).max(8).optional(),
        targets: z.array(pushTargetSetting).optional(),
        /** tap: whether a pass opens a full session (onboarding) rather than one limited to Security info. */
        fullSession: z.boolean().optional(),
        /** passkey: whether it signs a person in on its own from the email page (default true; issue #14). */
        passwordless: z.boolean().optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

const requirement = z
  .object({
    id,
    name: z.string().trim().min(1).max(200).optional(),
    ...targets,
    strength: z.string().trim().min(1),
    effective: dateText,
    graceDays: z.number().int().min(0).max(365).default(0),
    mode: z.enum(['enforce', 'report-only']).default('enforce'),
    bootstrap: z
      .object({
        duringGrace: z.enum(['any-registered', 'tap-only']).default('any-registered'),
        afterGrace: z.enum(['any-registered', 'tap-only']).default('tap-only'),
      })
      .strict()
      .default({ duringGrace: 'any-registered', afterGrace: 'tap-only' }),
  })
  .strict();

const registration = z
  .object({
    id,
    name: z.string().trim().min(1).max(200).optional(),
    ...targets,
    by: dateText,
    mode: z.enum(['enforce', 'report-only']).default('enforce'),
  })
  .strict();

const campaign = z
  .object({
    id,
    name: z.string().trim().min(1).max(200).optional(),
    ...targets,
    method: z.enum(CAMPAIGN_METHODS),
    snoozeDays: z.number().int().min(0).max(14).default(1),
    maxSnoozes: z.number().int().min(0).max(100).default(3),
  })
  .strict();

export const policyDocumentSchema = z
  .object({
    version: z.literal(1),
    timeZone: z.string().default('Europe/London'),
    strengths: z.record(id, z.union([z.array(z.enum(STRENGTH_METHODS)), strengthWithModels])).default({}),
    methods: z.partialRecord(z.enum(POLICY_METHODS), methodEntry),
    requirements: z.array(requirement).default([]),
    registration: z.array(registration).default([]),
    campaigns: z.array(campaign).default([]),
  })
  .strict();

export type PolicyDocument = z.output<typeof policyDocumentSchema>;
export type PolicyInput = z.input<typeof policyDocumentSchema>;

export interface TargetSet {
  include: string[];
  exclude: string[];
}

export interface CompiledRequirement extends TargetSet {
  id: string;
  name: string;
  strength: string;
  methods: ReadonlySet<SecondFactorKind>;
  /** For a kind listed here, only methods of these models (AAGUIDs) meet the strength. */
  models: ModelLists;
  effective: Date;
  graceUntil: Date;
  mode: 'enforce' | 'report-only';
  bootstrap: { duringGrace: 'any-registered' | 'tap-only'; afterGrace: 'any-registered' | 'tap-only' };
}

/** Per kind, the authenticator models (AAGUIDs) that alone count towards a strength. */
export type ModelLists = Partial<Record<SecondFactorKind, ReadonlySet<string>>>;

/**
 * Whether a registered method meets a requirement: its kind is one of the strength's, and where the
 * strength lists models for that kind, the method's model is one of them (a method of unknown model is not).
 */
export function meetsRequirement(requirement: Pick<CompiledRequirement, 'methods' | 'models'>, method: { kind: SecondFactorKind; model?: string | null }): boolean {
  if (!requirement.methods.has(method.kind)) return false;
  const models = requirement.models[method.kind];
  return !models || method.model === ANY_LISTED_MODEL || (typeof method.model === 'string' && models.has(method.model));
}

/**
 * The model of a method not registered yet ("would a passkey help?"): one the lists accept, since the
 * set-up itself refuses a model they do not (src/app/policy.ts `modelRefusal`).
 */
export const ANY_LISTED_MODEL = '*';

/** Whether any requirement of the policy lists models (the report then reads each person's). */
export function listsModels(policy: Pick<CompiledPolicy, 'requirements'>): boolean {
  return policy.requirements.some((r) => Object.keys(r.models).length > 0);
}

export interface CompiledRegistration extends TargetSet {
  id: string;
  name: string;
  by: Date;
  mode: 'enforce' | 'report-only';
}

export interface CompiledCampaign extends TargetSet {
  id: string;
  name: string;
  method: SecondFactorKind;
  snoozeDays: number;
  maxSnoozes: number;
}

export interface CompiledMethod extends TargetSet {
  enabled: boolean;
  numberDigits: number | null;
  numberDigitsTargets: Array<TargetSet & { numberDigits: number }>;
  fullSession: boolean;
  /** Signs a person in on its own (a passkey, without the password). */
  passwordless: boolean;
}

export interface CompiledPolicy {
  timeZone: string;
  strengths: Record<string, ReadonlySet<SecondFactorKind>>;
  methods: Partial<Record<PolicyMethod, CompiledMethod>>;
  requirements: CompiledRequirement[];
  registration: CompiledRegistration[];
  campaigns: CompiledCampaign[];
}

export interface PolicyProblem {
  /** Where in the document ("requirements[0].strength"). */
  path: string;
  message: string;
  /** `unknown-client`: a `client:KEY` no registered client has (a usage mistake: the CLI exits 2). */
  kind?: 'unknown-client';
}

export type CompileResult = { ok: true; policy: CompiledPolicy; document: PolicyDocument } | { ok: false; problems: PolicyProblem[] };

function pathOf(parts: readonly PropertyKey[]): string {
  return parts.reduce<string>((text, part) => (typeof part === 'number' ? `${text}[${part}]` : text ? `${text}.${String(part)}` : String(part)), '');
}

/** Parses and compiles a policy document (already read from YAML or JSON into a value). */
export function compilePolicy(input: unknown): CompileResult {
  const parsed = policyDocumentSchema.safeParse(input);
  if (!parsed.success) return { ok: false, problems: parsed.error.issues.map((issue) => ({ path: pathOf(issue.path), message: issue.message })) };
  const document = parsed.data;
  const problems: PolicyProblem[] = [];
  if (!isValidTimeZone(document.timeZone)) problems.push({ path: 'timeZone', message: `is not a known time zone (such as Europe/London)` });
  const timeZone = isValidTimeZone(document.timeZone) ? document.timeZone : 'Europe/London';

  const strengths: Record<string, ReadonlySet<SecondFactorKind>> = {};
  for (const [name, kinds] of Object.entries(BUILT_IN_STRENGTHS)) strengths[name] = new Set(kinds);
  const strengthModels: Record<string, ModelLists> = {};
  for (const [name, entry] of Object.entries(document.strengths)) {
    const kinds = Array.isArray(entry) ? entry : entry.methods;
    if (name in BUILT_IN_STRENGTHS) problems.push({ path: `strengths.${name}`, message: 'redefines a built-in strength' });
    if (kinds.length === 0) problems.push({ path: `strengths.${name}`, message: 'must list at least one method' });
    strengths[name] = new Set(kinds.filter(isSecondFactorKindOrPasskey));
    if (!Array.isArray(entry)) {
      const lists: ModelLists = {};
      for (const [kind, models] of Object.entries(entry.models) as Array<[SecondFactorKind, string[] | undefined]>) {
        if (!models) continue;
        if (!kinds.includes(kind)) problems.push({ path: `strengths.${name}.models.${kind}`, message: `lists models of ${kind}, which the strength does not name` });
        lists[kind] = new Set(models);
      }
      strengthModels[name] = lists;
    }
  }

  const date = (text: string, path: string): Date => {
    const instant = zonedToInstant(text, timeZone);
    if (!instant) problems.push({ path, message: 'is not a real date' });
    return instant ?? new Date(0);
  };
  const seen = new Set<string>();
  const unique = (value: string, path: string) => {
    if (seen.has(value)) problems.push({ path, message: `repeats the id ${value}` });
    seen.add(value);
  };

  const requirements = document.requirements.map((r, i): CompiledRequirement => {
    unique(r.id, `requirements[${i}].id`);
    const methods = strengths[r.strength];
    if (!methods) problems.push({ path: `requirements[${i}].strength`, message: `names no strength (known: ${Object.keys(strengths).join(', ')})` });
    const effective = date(r.effective, `requirements[${i}].effective`);
    return {
      id: r.id,
      name: r.name ?? r.id,
      include: r.include,
      exclude: r.exclude,
      strength: r.strength,
      methods: methods ?? new Set(),
      models: strengthModels[r.strength] ?? {},
      effective,
      graceUntil: new Date(effective.getTime() + r.graceDays * 86_400_000),
      mode: r.mode,
      bootstrap: r.bootstrap,
    };
  });
  const registration = document.registration.map((r, i): CompiledRegistration => {
    unique(r.id, `registration[${i}].id`);
    return { id: r.id, name: r.name ?? r.id, include: r.include, exclude: r.exclude, by: date(r.by, `registration[${i}].by`), mode: r.mode };
  });
  const campaigns = document.campaigns.map((c, i): CompiledCampaign => {
    unique(c.id, `campaigns[${i}].id`);
    if (!document.methods[c.method]?.enabled) problems.push({ path: `campaigns[${i}].method`, message: `asks people to register ${c.method}, which the methods policy does not enable` });
    return { id: c.id, name: c.name ?? c.id, include: c.include, exclude: c.exclude, method: c.method, snoozeDays: c.snoozeDays, maxSnoozes: c.maxSnoozes };
  });
  // Applications are what a sign-in is to, not who signs in: only a requirement can target one.
  const refuseClients = (set: { include: readonly string[]; exclude: readonly string[] }, path: string) => {
    for (const [list, values] of [['include', set.include], ['exclude', set.exclude]] as const) {
      values.forEach((target, i) => {
        if (isClientTarget(target)) problems.push({ path: `${path}.${list}[${i}]`, message: `${target}: an application can be targeted only by a requirement, not here` });
      });
    }
  };
  for (const [kind, entry] of Object.entries(document.methods)) {
    if (!entry) continue;
    refuseClients(entry, `methods.${kind}`);
    (entry.settings.targets ?? []).forEach((t, i) => refuseClients(t, `methods.${kind}.settings.targets[${i}]`));
  }
  document.registration.forEach((r, i) => refuseClients(r, `registration[${i}]`));
  document.campaigns.forEach((c, i) => refuseClients(c, `campaigns[${i}]`));
  const methods: Partial<Record<PolicyMethod, CompiledMethod>> = {};
  for (const [kind, entry] of Object.entries(document.methods) as Array<[PolicyMethod, PolicyDocument['methods'][PolicyMethod]]>) {
    if (!entry) continue;
    methods[kind] = {
      enabled: entry.enabled,
      include: entry.include,
      exclude: entry.exclude,
      numberDigits: entry.settings.numberDigits ?? null,
      numberDigitsTargets: (entry.settings.targets ?? []).map((t) => ({ include: t.include, exclude: t.exclude, numberDigits: t.numberDigits })),
      fullSession: entry.settings.fullSession ?? false,
      passwordless: entry.settings.passwordless ?? true,
    };
  }
  if (problems.length) return { ok: false, problems };
  return { ok: true, policy: { timeZone, strengths, methods, requirements, registration, campaigns }, document };
}

function isSecondFactorKindOrPasskey(kind: string): kind is SecondFactorKind {
  return isSecondFactorKind(kind) || kind === 'passkey';
}
