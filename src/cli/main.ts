/**
 * The `portcullis` command. Each verb says in its --help whether it needs the server's configuration
 * and database.
 */
import { createReadStream } from 'node:fs';
import { Command } from 'commander';
import { CliExit, cliActor, NEEDS_TEXT, readStdin, reportError, withContext, type VerbNeeds } from './runtime.js';

// Verbs load what they use when they run, so `--help` and client-side verbs start quickly.
const directory = () => import('../app/directory.js');
const demo = () => import('../app/demo.js');
const authenticator = () => import('./authenticator/commands.js');
const policyCommands = () => import('./commands/policy.js');
const admin = () => import('../app/admin.js');

const out = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** Marks a verb with what it needs, in its help and for tests (`program.commands[].needs`). */
function verb(parent: Command, name: string, needs: VerbNeeds, options: { isDefault?: boolean } = {}): Command {
  const command = parent.command(name, options);
  command.addHelpText('after', NEEDS_TEXT[needs]);
  (command as Command & { needs?: VerbNeeds }).needs = needs;
  return command;
}

export function buildProgram(): Command {
  const program = new Command('portcullis')
    .description('Portcullis: a self-hosted identity provider with multi-factor authentication and per-role method policy.')
    .showHelpAfterError()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });

  verb(program, 'serve', 'server')
    .description('Apply migrations and serve HTTP (PUBLIC_URL, PORT and the rest from the environment), and /metrics on METRICS_HOST:METRICS_PORT (127.0.0.1:9464)')
    .option('--demo', 'also create the demo organisation and users if missing')
    .action(async (options: { demo?: boolean }) => (await import('./commands/serve.js')).serve(options));

  verb(program, 'migrate', 'server')
    .description('Apply database migrations, then exit')
    .action(() =>
      withContext(async (ctx) => {
        // createAppContext has already migrated; running again reports that nothing is left.
        const { migrateToLatest } = await import('../store/migrations/index.js');
        const { applied } = await migrateToLatest(ctx.store.database.db, ctx.store.dialect);
        out(applied.length ? `Applied: ${applied.join(', ')}` : 'The database is up to date.');
      }),
    );

  const secret = program.command('secret').description('Secrets for configuration');
  verb(secret, 'generate', 'none')
    .description('Print a new random value for PORTCULLIS_SECRET (32 bytes, base64url)')
    .action(async () => out((await import('../config/secret.js')).generateSecret()));

  const org = program.command('org').description('Organisations');
  verb(org, 'add', 'server')
    .description('Add an organisation')
    .argument('<name>', 'the organisation’s name')
    .action((name: string) =>
      withContext(async (ctx) => {
        const row = await (await directory()).addOrganisation(ctx, name, cliActor());
        out(`Added organisation ${row.name}.`);
      }),
    );
  verb(org, 'list', 'server')
    .description('List organisations')
    .option('--json', 'print JSON')
    .action((options: { json?: boolean }) =>
      withContext(async (ctx) => {
        const rows = await ctx.store.organisations.list();
        if (options.json) return out(JSON.stringify(rows.map((r) => ({ id: r.id, name: r.name, users: r.users, createdAt: r.created_at })), null, 2));
        if (rows.length === 0) return out('There are no organisations yet. Add one with `portcullis org add NAME`.');
        out(table([['NAME', 'USERS'], ...rows.map((r) => [r.name, String(r.users)])]));
      }),
    );

  const user = program.command('user').description('Users');
  verb(user, 'add', 'server')
    .description('Add a user. Without --password-stdin, prints a one-time activation link for them to set a password.')
    .requiredOption('--email <email>', 'email address (unique, case-insensitive)')
    .requiredOption('--name <name>', 'display name')
    .requiredOption('--org <organisation>', 'organisation name (it must exist)')
    .option('--role <role>', 'a role to grant, as ROLE or ROLE:ORGANISATION (repeatable)', collect, [])
    .option('--password-stdin', 'read the password from standard input')
    .action((options: { email: string; name: string; org: string; role: string[]; passwordStdin?: boolean }) =>
      withContext(async (ctx) => {
        const password = options.passwordStdin ? (await readStdin()).replace(/\r?\n$/, '') : undefined;
        const { parseRoleList } = await import('../app/import-users.js');
        const result = await (await directory()).addUser(
          ctx,
          { email: options.email, displayName: options.name, organisation: options.org, roles: parseRoleList(options.role.join(';')), password },
          cliActor(),
        );
        out(`Added ${result.user.email}.`);
        if (result.activationUrl) out(`Activation link (one use, send it to the user): ${result.activationUrl}`);
      }),
    );
  verb(user, 'list', 'server')
    .description('List users with their organisation, status and roles')
    .option('--json', 'print JSON')
    .option('--org <organisation>', 'only this organisation')
    .action((options: { json?: boolean; org?: string }) =>
      withContext(async (ctx) => {
        let organisationId: string | undefined;
        if (options.org) {
          const found = await ctx.store.organisations.findByName(options.org);
          if (!found) throw new CliExit(1, `There is no organisation called ${options.org}`);
          organisationId = found.id;
        }
        const rows = await ctx.store.users.list(organisationId ? { organisationId } : {});
        if (options.json) return out(JSON.stringify(rows, null, 2));
        if (rows.length === 0) return out('There are no users.');
        out(
          table([
            ['EMAIL', 'NAME', 'ORGANISATION', 'STATUS', 'ROLES'],
            ...rows.map((r) => [
              r.email,
              r.displayName,
              r.organisation,
              r.hasPassword ? r.status : `${r.status} (not activated)`,
              r.roles.map((a) => (a.scope === '*' ? a.role : `${a.role}:${a.scope}`)).join(', '),
            ]),
          ]),
        );
      }),
    );
  verb(user, 'disable', 'server')
    .description('Turn off a user’s account: they cannot sign in and their sessions end')
    .argument('<email>')
    .action((email: string) =>
      withContext(async (ctx) => {
        const { user: row, sessionsEnded } = await (await directory()).disableUser(ctx, email, cliActor());
        out(`Disabled ${row.email}; ended ${sessionsEnded} session${sessionsEnded === 1 ? '' : 's'}.`);
      }),
    );

  const role = program.command('role').description('Roles and who holds them');
  verb(role, 'grant', 'server')
    .description('Grant a role. local-admin must be scoped to organisations with --org; helpdesk may be.')
    .argument('<email>')
    .argument('<role>')
    .option('--org <organisation>', 'scope the role to this organisation (repeatable)', collect, [])
    .action((email: string, roleName: string, options: { org: string[] }) =>
      withContext(async (ctx) => {
        const result = await (await directory()).grantRole(ctx, email, roleName, options.org, cliActor());
        const where = options.org.length ? ` for ${options.org.join(', ')}` : '';
        out(result.granted.length ? `Granted ${result.role.name}${where} to ${result.user.email}.` : `${result.user.email} already holds ${result.role.name}${where}.`);
      }),
    );
  verb(role, 'revoke', 'server')
    .description('Revoke a role (only for the organisations named with --org, if any)')
    .argument('<email>')
    .argument('<role>')
    .option('--org <organisation>', 'revoke only for this organisation (repeatable)', collect, [])
    .action((email: string, roleName: string, options: { org: string[] }) =>
      withContext(async (ctx) => {
        const result = await (await directory()).revokeRole(ctx, email, roleName, options.org, cliActor());
        out(`Revoked ${result.role.name} from ${result.user.email}.`);
      }),
    );
  verb(role, 'list', 'server')
    .description('List the roles and which are elevated')
    .option('--json', 'print JSON')
    .action((options: { json?: boolean }) =>
      withContext(async (ctx) => {
        const rows = await ctx.store.roles.list();
        if (options.json) return out(JSON.stringify(rows, null, 2));
        out(table([['ROLE', 'ELEVATED', 'SCOPE', 'DESCRIPTION'], ...rows.map((r) => [r.name, r.elevated ? 'yes' : 'no', r.scope, r.description])]));
      }),
    );

  const importCommand = program.command('import').description('Bulk imports');
  verb(importCommand, 'users', 'server')
    .description(
      'Import users from CSV with the columns email, name, organisation and optionally roles ("helpdesk;local-admin:Other Org"). ' +
        'Prints each new user’s activation link as CSV (email,activation_url); bad rows go to standard error with their line numbers.',
    )
    .argument('<file>', 'CSV file, or - for standard input')
    .action((file: string) =>
      withContext(async (ctx) => {
        const { ImportFormatError, importUsers } = await import('../app/import-users.js');
        const input = file === '-' ? process.stdin : createReadStream(file);
        out('email,activation_url');
        let report;
        try {
          report = await importUsers(ctx, input, cliActor(), {
            imported: (row) => out(`${row.email},${row.activationUrl ?? ''}`),
            failed: (row) => process.stderr.write(`line ${row.line}: ${row.email ? `${row.email}: ` : ''}${row.message}\n`),
          });
        } catch (error) {
          if (error instanceof ImportFormatError) throw new CliExit(1, error.message);
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new CliExit(1, `Cannot read ${file}: no such file`);
          throw error;
        }
        process.stderr.write(`Imported ${report.imported} user${report.imported === 1 ? '' : 's'}; ${report.failed.length} row${report.failed.length === 1 ? '' : 's'} failed.\n`);
        if (report.failed.length) process.exitCode = 1;
      }),
    );

  verb(program, 'demo', 'server')
    .description('Create the demo organisations and users if missing (idempotent), register the sample application Mail (examples/mail-app; its secret goes to mail-app-client.json in the data directory, never to the output), and print how to sign in')
    .action(() =>
      withContext(async (ctx) => {
        const { describeDemo, ensureDemo } = await demo();
        const report = await ensureDemo(ctx);
        if (report.created.length) out(`Created ${report.created.length} demo users.`);
        out(describeDemo(ctx.config.publicUrl));
      }),
    );

  verb(program, 'outbox', 'server')
    .description(
      'Print the development outbox, newest first: the text messages, calls and email that the outbox provider kept instead of sending (SMS_PROVIDER, VOICE_PROVIDER, EMAIL_PROVIDER)',
    )
    .option('--json', 'print JSON')
    .option('--to <address>', 'only messages to this phone number (E.164) or email address')
    .option('--limit <n>', 'at most this many messages (1 to 500)', '20')
    .option('--dead', 'instead, the dead letters of every provider: messages given up, with why (never their text; recipients masked)')
    .action((options: { json?: boolean; to?: string; limit: string; dead?: boolean }) => {
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new CliExit(2, '--limit must be a whole number from 1 to 500');
      if (options.dead && options.to) throw new CliExit(2, '--to cannot be used with --dead (recipients are masked)');
      return withContext(async (ctx) => {
        if (options.dead) {
          const dead = await ctx.delivery.listDeadLetters({ limit });
          if (options.json) return out(JSON.stringify(dead, null, 2));
          if (dead.length === 0) return out('There are no dead letters.');
          return out(
            table([
              ['TIME', 'ID', 'CHANNEL', 'PURPOSE', 'TO', 'PROVIDER', 'ATTEMPTS', 'WHY'],
              ...dead.map((d) => [d.createdAt, d.id, d.channel, d.purpose, d.to, d.provider, String(d.attempts), d.lastError]),
            ]),
          );
        }
        const messages = await ctx.delivery.listOutbox({ limit, to: options.to });
        if (options.json) return out(JSON.stringify(messages, null, 2));
        if (messages.length === 0) return out(`The development outbox is empty${options.to ? ` for ${options.to}` : ''}.`);
        const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();
        out(
          table([
            ['TIME', 'CHANNEL', 'TO', 'MESSAGE', 'CODE'],
            ...messages.map((m) => [m.createdAt, m.channel, m.to, oneLine(m.subject ? `${m.subject}: ${m.text}` : m.text), m.code ?? '']),
          ]),
        );
      });
    });

  verb(user, 'reset-methods', 'server')
    .description('Remove every sign-in method of a user and sign them out everywhere: they set one up again at their next sign-in')
    .argument('<email>')
    .action((email: string) =>
      withContext(async (ctx) => {
        const result = await (await admin()).resetMethods(ctx, email, cliActor());
        out(`Removed ${result.methods} sign-in method${result.methods === 1 ? '' : 's'} from ${result.user.email} and ended ${result.sessions} session${result.sessions === 1 ? '' : 's'}. They have been emailed.`);
      }),
    );

  const session = program.command('session').description('Sessions');
  verb(session, 'revoke', 'server')
    .description('End every session of a user (they must sign in again everywhere)')
    .argument('<email>')
    .action((email: string) =>
      withContext(async (ctx) => {
        const result = await (await admin()).revokeSessions(ctx, email, cliActor());
        out(`Ended ${result.sessions} session${result.sessions === 1 ? '' : 's'} of ${result.user.email}.`);
      }),
    );

  const push = program.command('push').description('Push with number matching');
  verb(push, 'unblock', 'server')
    .description('Turn sign-in requests to a user’s authenticator app back on after they reported one as not them')
    .argument('<email>')
    .action((email: string) =>
      withContext(async (ctx) => {
        const row = await (await admin()).unblockPush(ctx, email, cliActor());
        out(`Sign-in requests to ${row.email}’s authenticator app are on again. They have been emailed.`);
      }),
    );

  const group = program.command('group').description('Groups of users that the method policy can target (group:NAME)');
  verb(group, 'add', 'server')
    .description('Add a group')
    .argument('<name>')
    .option('--description <text>', 'what the group is for', '')
    .action((name: string, options: { description: string }) =>
      withContext(async (ctx) => {
        const row = await (await admin()).createGroup(ctx, name, options.description, cliActor());
        out(`Added group ${row.name}.`);
      }),
    );
  verb(group, 'list', 'server')
    .description('List groups and how many members each has')
    .option('--json', 'print JSON')
    .action((options: { json?: boolean }) =>
      withContext(async (ctx) => {
        const rows = await (await admin()).listGroups(ctx);
        if (options.json) return out(JSON.stringify(rows.map((r) => ({ name: r.name, description: r.description, members: r.members })), null, 2));
        if (rows.length === 0) return out('There are no groups yet. Add one with `portcullis group add NAME`.');
        out(table([['GROUP', 'MEMBERS', 'DESCRIPTION'], ...rows.map((r) => [r.name, String(r.members), r.description])]));
      }),
    );
  verb(group, 'add-member', 'server')
    .description('Add a user to a group (refused if the method policy could not then be met)')
    .argument('<group>')
    .argument('<email>')
    .action((groupName: string, email: string) =>
      withContext(async (ctx) => {
        const result = await (await admin()).addGroupMember(ctx, groupName, email, cliActor());
        out(`Added ${result.user.email} to ${result.group.name}.`);
      }),
    );
  verb(group, 'remove-member', 'server')
    .description('Remove a user from a group (refused if the method policy could not then be met)')
    .argument('<group>')
    .argument('<email>')
    .action((groupName: string, email: string) =>
      withContext(async (ctx) => {
        const result = await (await admin()).removeGroupMember(ctx, groupName, email, cliActor());
        out(`Removed ${result.user.email} from ${result.group.name}.`);
      }),
    );

  const policy = program.command('policy').description('The method policy: which roles may use which methods, from when');
  const allowStranded = '--allow-stranded';
  const allowStrandedHelp = 'accept that the policy turns off every method some people have registered (they are counted by role first)';
  verb(policy, 'check', 'server')
    .description(
      'Check a policy file (YAML or JSON; - for standard input) against the directory without applying it; counts, by role, the people it would strand (every method they registered turned off for them) and fails if there are any',
    )
    .argument('<file>')
    .option(allowStranded, allowStrandedHelp)
    .action((file: string, options: { allowStranded?: boolean }) => withContext(async (ctx) => (await policyCommands()).policyCheck(ctx, file, options)));
  verb(policy, 'apply', 'server')
    .description('Check and apply a policy file as the next version (recorded with who applied it, and when); refused if it would strand people, unless --allow-stranded')
    .argument('<file>')
    .option('--comment <text>', 'why, for the history')
    .option(allowStranded, allowStrandedHelp)
    .action((file: string, options: { comment?: string; allowStranded?: boolean }) => withContext(async (ctx) => (await policyCommands()).policyApply(ctx, file, options)));
  verb(policy, 'show', 'server')
    .description('Print the policy in force (or an earlier version) as it was applied')
    .option('--version <n>', 'an earlier version')
    .action((options: { version?: string }) => withContext(async (ctx) => (await policyCommands()).policyShow(ctx, options)));
  verb(policy, 'history', 'server')
    .description('List the policy versions: who applied each, when, and why')
    .option('--json', 'print JSON')
    .action((options: { json?: boolean }) => withContext(async (ctx) => (await policyCommands()).policyHistory(ctx, options)));
  verb(policy, 'what-if', 'server')
    .description('Who would not be compliant on a date under the policy in force, and why')
    .requiredOption('--date <YYYY-MM-DD>', 'the day (in the policy’s time zone)')
    .option('--role <role>', 'only holders of this role')
    .option('--user <email>', 'only this user')
    .option('--json', 'print one JSON object per user')
    .action((options: { date: string; role?: string; user?: string; json?: boolean }) => withContext(async (ctx) => (await policyCommands()).policyWhatIf(ctx, options)));

  const report = program.command('report').description('Reports');
  verb(report, 'compliance', 'server')
    .description('Compliance with the method policy: a summary (table or JSON), or one row per user (CSV, streamed)')
    .option('--format <format>', 'table, csv or json', 'table')
    .option('--date <YYYY-MM-DD>', 'as it will be on this day')
    .action((options: { format: string; date?: string }) => withContext(async (ctx) => (await policyCommands()).reportCompliance(ctx, options)));

  const feedback = program.command('feedback').description('Answers to “Was this article helpful?” on the help pages');
  verb(feedback, 'report', 'server')
    .description('Per article: helpful and not helpful, the reasons and the comments, over a period (the last 30 days unless given)')
    .option('--from <YYYY-MM-DD>', 'from the start of this day (UTC)')
    .option('--to <YYYY-MM-DD>', 'to the end of this day (UTC); now unless given')
    .option('--article <slug>', 'only this article')
    .option('--format <format>', 'table, csv or json', 'table')
    .action((options: { from?: string; to?: string; article?: string; format: string }) =>
      withContext(async (ctx) => (await import('./commands/feedback.js')).reportFeedback(ctx, options)),
    );

  const exception = program.command('exception').description('Exceptions: one user exempt from one requirement until a date, with the reason');
  verb(exception, 'add', 'server')
    .description('Exempt a user from a requirement (at most 180 days; for a lost phone, --for 24h)')
    .argument('<email>')
    .requiredOption('--requirement <id>', 'the requirement’s id in the policy')
    .option('--until <YYYY-MM-DD>', 'the day it ends (in the policy’s time zone)')
    .option('--for <duration>', 'how long it lasts, such as 24h or 30d')
    .requiredOption('--reason <text>', 'why, for the audit log')
    .action((email: string, options: { requirement: string; until?: string; for?: string; reason: string }) =>
      withContext(async (ctx) => (await policyCommands()).exceptionAdd(ctx, email, options)),
    );
  verb(exception, 'list', 'server')
    .description('List live exceptions (all of them with --all)')
    .option('--user <email>', 'only this user’s')
    .option('--all', 'include ended and revoked ones')
    .option('--json', 'print JSON')
    .action((options: { user?: string; all?: boolean; json?: boolean }) => withContext(async (ctx) => (await policyCommands()).exceptionList(ctx, options)));
  verb(exception, 'revoke', 'server')
    .description('End an exception now')
    .argument('<id>')
    .action((id: string) => withContext(async (ctx) => (await policyCommands()).exceptionRevoke(ctx, id)));

  const tap = program.command('tap').description('Temporary Access Passes');
  verb(tap, 'issue', 'server')
    .description('Issue a Temporary Access Pass for a user and print it once (a new pass replaces any earlier one)')
    .argument('<email>')
    .option('--lifetime <duration>', 'how long it works, 10m to 30d', '1h')
    .option('--multi-use', 'works more than once until it ends (for onboarding)')
    .action((email: string, options: { lifetime: string; multiUse?: boolean }) => withContext(async (ctx) => (await policyCommands()).tapIssue(ctx, email, options)));

  const audit = program.command('audit').description('The audit log');
  verb(audit, 'verify', 'server')
    .description(
      'Seal the events not chained yet, then check the whole audit chain: every entry’s MAC, their order, that no entry or event was removed or added, and that the chain still holds every checkpoint. Exits 1 naming the first broken entry.',
    )
    .option('--json', 'print JSON')
    .option('--checkpoint <seq:mac>', 'also check a checkpoint kept outside the database (the seq and mac of an audit.checkpoint log line; repeatable)', collect, [])
    .action((options: { json?: boolean; checkpoint: string[] }) =>
      withContext(async (ctx) => (await import('./commands/audit.js')).auditVerify(ctx, options)),
    );

  const keys = program.command('keys').description('The OpenID Connect provider’s signing keys');
  verb(keys, 'list', 'server')
    .description('List the signing keys: kid, algorithm, state (current, previous, retired), when made, when a previous key retires')
    .option('--json', 'print JSON')
    .action((options: { json?: boolean }) => withContext(async (ctx) => (await import('./commands/keys.js')).keysList(ctx, options)));
  verb(keys, 'rotate', 'server')
    .description('Make new current signing keys; the ones they replace keep verifying (and stay in the JWKS) until the tokens they signed have expired')
    .action(() => withContext(async (ctx) => (await import('./commands/keys.js')).keysRotate(ctx)));

  // Personal API tokens for the admin API (docs/admin-api.md). The token is printed by add only.
  const tokenCommands = () => import('./commands/tokens.js');
  const token = program.command('token').description('Personal API tokens for the admin API (/api/admin/v1)');
  verb(token, 'add', 'server')
    .description('Make a token that acts as an administrator, within their roles, for the scopes named; prints it once')
    .requiredOption('--user <email>', 'the administrator the token acts as')
    .requiredOption('--name <name>', 'what the token is for')
    .option('--scope <scopes>', 'admin:read, admin:passes, admin:sessions, admin:accounts (repeatable, or comma-separated; default admin:read)', collect, [])
    .option('--days <n>', 'how long it lasts, 1 to 365 days', '90')
    .option('--json', 'print JSON')
    .action((options: import('./commands/tokens.js').TokenAddOptions) => withContext(async (ctx) => (await tokenCommands()).tokenAdd(ctx, options)));
  verb(token, 'list', 'server')
    .description('List the tokens (never the tokens themselves)')
    .option('--json', 'print JSON')
    .action((options: { json?: boolean }) => withContext(async (ctx) => (await tokenCommands()).tokenList(ctx, options)));
  verb(token, 'revoke', 'server')
    .description('Revoke a token at once')
    .argument('<id>', 'the token id (token list)')
    .action((id: string) => withContext(async (ctx) => (await tokenCommands()).tokenRevoke(ctx, id)));

  // OpenID Connect clients (docs/oidc.md#clients). A secret is printed by add and rotate-secret only.
  const clientCommands = () => import('./commands/clients.js');
  const client = program.command('client').description('Applications that sign users in with Portcullis (OpenID Connect clients)');
  verb(client, 'add', 'server')
    .description(
      'Register a client and print its id (and its secret, once). Signs users in with the authorization code grant and PKCE (S256), ' +
        'or, with --service, uses the client credentials grant only',
    )
    .requiredOption('--name <name>', 'the name users see, 1 to 120 characters')
    .option('--key <key>', 'what the policy names it by (client:KEY): lower-case letters, digits and dashes, 1 to 64, unique (default: the name, slugified)')
    .option('--redirect-uri <uri>', 'where users are sent back, matched exactly: https, or http only for localhost and 127.0.0.1 (repeatable)', collect, [])
    .option('--confidential', 'the client keeps a secret (client_secret_basic); without it, it is public (no secret)')
    .option('--first-party', 'a Portcullis-run application: users are not asked for consent')
    .option('--post-logout-redirect-uri <uri>', 'where users may be sent after signing out (repeatable)', collect, [])
    .option('--back-channel-logout-uri <uri>', 'where Portcullis posts logout tokens (https, or http on localhost)')
    .option('--service', 'a service acting for itself: client credentials grant, a secret, no redirect URI')
    .option('--scope <scope>', 'with --service: a scope it may ask for (repeatable, or space-separated)', collect, [])
    .option('--id-token-alg <alg>', 'how its ID tokens are signed: RS256 (the default, which every client accepts) or ES256 (smaller, and a tenth of the signing cost)')
    .option('--json', 'print JSON (with clientSecret)')
    .action((options: import('./commands/clients.js').ClientAddOptions) => withContext(async (ctx) => (await clientCommands()).clientAdd(ctx, options)));
  verb(client, 'admin-scope', 'server')
    .description('Where a --service client may use its admin scopes (admin:read, admin:passes, admin:sessions, admin:accounts) on the admin API: every organisation, or those named')
    .argument('<client-id>')
    .option('--everywhere', 'every organisation')
    .option('--organisation <name>', 'an organisation (repeatable)', collect, [])
    .action((id: string, options: { everywhere?: boolean; organisation: string[] }) =>
      withContext(async (ctx) => {
        const { setClientAdminScope } = await import('../app/admin-api.js');
        const organisations = await setClientAdminScope(ctx, id, { everywhere: options.everywhere ?? false, organisations: options.organisation }, cliActor());
        out(organisations[0] === '*' ? `Client ${id} may use its admin scopes in every organisation.` : `Client ${id} may use its admin scopes in ${organisations.length} organisation${organisations.length === 1 ? '' : 's'}.`);
      }),
    );
  verb(client, 'list', 'server')
    .description('List the clients: id, name, kind, first party, grant types (never their secrets)')
    .option('--json', 'print JSON')
    .action((options: { json?: boolean }) => withContext(async (ctx) => (await clientCommands()).clientList(ctx, options)));
  verb(client, 'show', 'server')
    .description('Show one client’s registration (never its secret)')
    .argument('<client-id>')
    .option('--json', 'print JSON')
    .action((id: string, options: { json?: boolean }) => withContext(async (ctx) => (await clientCommands()).clientShow(ctx, id, options)));
  verb(client, 'remove', 'server')
    .description('Remove a client: it can get no more tokens (those it holds stay valid until they expire); refused while the policy in force names it (client:KEY)')
    .argument('<client-id>')
    .action((id: string) => withContext(async (ctx) => (await clientCommands()).clientRemove(ctx, id)));
  verb(client, 'rotate-secret', 'server')
    .description('Give a confidential or service client a new secret, printed once; the old one stops working at once')
    .argument('<client-id>')
    .option('--json', 'print JSON (with clientSecret)')
    .action((id: string, options: { json?: boolean }) => withContext(async (ctx) => (await clientCommands()).clientRotateSecret(ctx, id, options)));

  // The CLI authenticator (docs/authenticator.md): runs on a user's own computer, with only its store file.
  const auth = program
    .command('authenticator')
    .description('Use this computer as an authenticator: approve sign-in requests from the terminal, and keep codes for other accounts');
  const storeOption = (command: Command) => command.option('--store <file>', 'the store file (default: $PORTCULLIS_AUTHENTICATOR_STORE or ~/.config/portcullis/authenticator.json)');
  const accountOption = (command: Command) => storeOption(command).option('--account <email>', 'only this paired account (its email or device id)');
  storeOption(verb(auth, 'pair', 'none'))
    .description('Pair this computer with your account, from the link on Security info → Add sign-in method → Authenticator app')
    .argument('<activation-url>', 'the pairing link (…/authenticator/#pair=…)')
    .option('--name <name>', 'this device’s name on Security info, 1 to 60 characters (default: the host name)')
    .action(async (url: string, options: { store?: string; name?: string }) => (await authenticator()).pairCommand(url, options));
  accountOption(verb(auth, 'pending', 'none'))
    .description('List the sign-in requests waiting for this computer (asks the server)')
    .option('--json', 'print JSON (the format is in docs/authenticator.md)')
    .option('--wait <seconds>', 'if none is waiting, ask again every 2 seconds for up to this long')
    .action(async (options: { store?: string; account?: string; json?: boolean; wait?: string }) => (await authenticator()).pendingCommand(options));
  accountOption(verb(auth, 'approve', 'none'))
    .description('Approve a sign-in request with the number shown on the sign-in page')
    .argument('<challenge-id>', 'the request’s id, from `pending` or `watch`')
    .requiredOption('--number <n>', 'the number shown on the sign-in page')
    .action(async (id: string, options: { store?: string; account?: string; number: string }) => (await authenticator()).approveCommand(id, options));
  accountOption(verb(auth, 'deny', 'none'))
    .description('Deny a sign-in request; with --report, say it was not you (the sign-in is refused and administrators are told)')
    .argument('<challenge-id>', 'the request’s id, from `pending` or `watch`')
    .option('--report', '“No, it’s not me”: report the request as fraud')
    .action(async (id: string, options: { store?: string; account?: string; report?: boolean }) => (await authenticator()).denyCommand(id, options));
  accountOption(verb(auth, 'devices', 'none'))
    .description('List your authenticator devices, marking this computer')
    .option('--json', 'print JSON')
    .action(async (options: { store?: string; account?: string; json?: boolean }) => (await authenticator()).devicesCommand(options));
  accountOption(verb(auth, 'watch', 'none'))
    .description('Print sign-in requests as they arrive (reconnecting when the connection drops) until Ctrl-C')
    .option('--json', 'print one JSON object per line, as in `pending --json`')
    .action(async (options: { store?: string; account?: string; json?: boolean }) => {
      // Ctrl-C (or a service manager's SIGTERM) ends the watch cleanly, with exit code 0.
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const { terminalIo, watchCommand } = await authenticator();
      try {
        await watchCommand(options, { ...terminalIo, signal: controller.signal });
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
  accountOption(verb(auth, 'remove', 'none'))
    .description('Remove this computer from your account (you are emailed) and forget it here')
    .action(async (options: { store?: string; account?: string }) => (await authenticator()).removeCommand(options));
  accountOption(verb(auth, 'forget', 'none'))
    .description('Forget an account on this computer only, deleting its key; your account is not changed (for when `remove` is refused)')
    .action(async (options: { store?: string; account?: string }) => (await authenticator()).forgetCommand(options));
  const codes = auth.command('codes').description('The code vault: 6-digit codes for your other accounts');
  storeOption(verb(codes, 'list', 'none', { isDefault: true }))
    .description('Print each account’s current code and the seconds it has left (the default)')
    .option('--json', 'print JSON')
    .action(async (options: { store?: string; json?: boolean }) => (await authenticator()).codesListCommand(options));
  storeOption(verb(codes, 'add', 'none'))
    .description('Add an account from its otpauth:// link (from its set-up QR code); "-" reads the link from standard input')
    .argument('<otpauth-uri>', 'otpauth://totp/…, or - for standard input')
    .action(async (uri: string, options: { store?: string }) => (await authenticator()).codesAddCommand(uri, options));
  storeOption(verb(codes, 'remove', 'none'))
    .description('Remove an account’s code')
    .argument('<name>', '“Issuer (account)”, the account, or the id from `codes --json`')
    .action(async (name: string, options: { store?: string }) => (await authenticator()).codesRemoveCommand(name, options));
  storeOption(verb(codes, 'export', 'none'))
    .description('Write the codes to a new file, encrypted with a passphrase read from standard input (for the PWA’s import, or another computer)')
    .argument('<file>')
    .action(async (file: string, options: { store?: string }) => (await authenticator()).codesExportCommand(file, options));
  storeOption(verb(codes, 'import', 'none'))
    .description('Add the codes from an export (the PWA’s or this command’s), with the passphrase read from standard input')
    .argument('<file>')
    .action(async (file: string, options: { store?: string }) => (await authenticator()).codesImportCommand(file, options));

  verb(program, 'build', 'none')
    .description('Build the CSS and front-end assets, and the compiled CLI (run by npm ci)')
    .action(async () => {
      const { files } = await (await import('../web/build-assets.js')).buildAssets();
      const { outdir } = await (await import('./bundle.js')).buildCliBundle();
      out(`Built ${files.length} assets, and the CLI in ${outdir}.`);
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  // Commander copies exitOverride only to subcommands added after it is set, so each verb needs its
  // own: otherwise a usage mistake in a verb (a missing required option) exits 1 inside Commander.
  const overrideExit = (command: Command): void => {
    command.exitOverride();
    command.commands.forEach(overrideExit);
  };
  overrideExit(program);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help') return 0;
    // Commander's own errors (a missing argument or option, an unknown one) are usage mistakes: exit 2.
    if (typeof code === 'string' && code.startsWith('commander.')) return 2;
    return reportError(error);
  }
}

const isEntry = process.argv[1] && /portcullis(\.js)?$|cli[\\/]main\.ts$/.test(process.argv[1]);
if (isEntry) {
  const code = await main(process.argv);
  // Writes to a pipe are asynchronous: exiting at once would drop what is still queued (an import's
  // activation links, read by a script through a pipe, were cut short). Each stream's empty write calls
  // back once everything before it has been handed to the system.
  const drained = (stream: NodeJS.WriteStream) => new Promise<void>((resolve) => (stream.writableLength === 0 ? resolve() : stream.write('', () => resolve())));
  if (process.argv[2] !== 'serve' || code !== 0) await Promise.all([drained(process.stdout), drained(process.stderr)]);
  // serve keeps running; every other verb ends here.
  if (process.argv[2] !== 'serve') process.exit(code);
  else if (code !== 0) process.exit(code);
}
