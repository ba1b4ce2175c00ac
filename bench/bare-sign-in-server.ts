/**
 * The least any server could do for a password sign-in over HTTP: answer the same three requests as
 * Portcullis (GET /sign-in with a page of the same size, POST the email, POST the password) with
 * node:http and nothing else: no database, no templates, no cookies to check, no CSRF, no audit. The
 * password is verified with the same hasher at the same parameters. bench/sign-in runs it beside the
 * real server to show how close to the raw argon2id rate a sign-in over HTTP can come on this machine
 * with this load generator, which shares the CPUs.
 *
 *   tsx bench/bare-sign-in-server.ts PORT PAGE_BYTES PASSWORD   (prints "ready" when it listens)
 */
import { optionsSchema } from '../src/config/schema.js';
import { createPasswordHasher } from '../src/crypto/password-hasher.js';
import { createBareSignInServer } from './lib.js';

const [port, pageBytes, password] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4] ?? ''];
const options = optionsSchema.parse(process.env);
const hasher = await createPasswordHasher({
  memoryKib: options.PASSWORD_ARGON2_MEMORY_KIB,
  iterations: options.PASSWORD_ARGON2_ITERATIONS,
  parallelism: options.PASSWORD_ARGON2_PARALLELISM,
  concurrency: options.PASSWORD_HASH_CONCURRENCY || null,
});
const phc = await hasher.hash(password);
const server = createBareSignInServer(pageBytes, (typed) => hasher.verify(phc, typed));
server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
