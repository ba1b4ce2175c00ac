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
import http from 'node:http';
import { optionsSchema } from '../src/config/schema.js';
import { createPasswordHasher } from '../src/crypto/password-hasher.js';

const [port, pageBytes, password] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4] ?? ''];
const options = optionsSchema.parse(process.env);
const hasher = await createPasswordHasher({
  memoryKib: options.PASSWORD_ARGON2_MEMORY_KIB,
  iterations: options.PASSWORD_ARGON2_ITERATIONS,
  parallelism: options.PASSWORD_ARGON2_PARALLELISM,
  concurrency: options.PASSWORD_HASH_CONCURRENCY || null,
});
const phc = await hasher.hash(password);
const form = '<form method="post"><input type="hidden" name="_csrf" value="bare"><input name="email"></form>';
const page = `<!DOCTYPE html><html><body>${form}${' '.repeat(Math.max(0, pageBytes - form.length - 40))}</body></html>`;
const pageLength = Buffer.byteLength(page);

const server = http.createServer((request, response) => {
  let body = '';
  request.setEncoding('utf8');
  request.on('data', (chunk: string) => (body += chunk));
  request.on('end', () => {
    if (request.method === 'GET') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': pageLength, 'set-cookie': 'flow=; Path=/; HttpOnly' });
      response.end(page);
    } else if (request.url === '/sign-in') {
      response.writeHead(303, { location: '/sign-in/password', 'content-length': 0, 'set-cookie': 'flow=bare; Path=/; HttpOnly' });
      response.end();
    } else {
      const typed = new URLSearchParams(body).get('password') ?? '';
      void hasher.verify(phc, typed).then((ok) => {
        response.writeHead(303, { location: ok ? '/account' : '/sign-in/password', 'content-length': 0, ...(ok ? { 'set-cookie': 'session=bare; Path=/; HttpOnly' } : {}) });
        response.end();
      });
    }
  });
});
server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
