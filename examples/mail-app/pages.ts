/** The mail app's HTML: plain, accessible pages (lang, landmarks, headings, labelled controls), no script. */

export const escapeHtml = (value: string): string =>
  value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export interface Layout {
  title: string;
  /** The signed-in person's CSRF token, when someone is signed in (the Sign out form needs it). */
  csrf: string | null;
  body: string;
}

export function page({ title, csrf, body }: Layout): string {
  const nav = csrf
    ? `<nav aria-label="Mail">
      <ul>
        <li><a href="/">Inbox</a></li>
        <li><a href="/settings">Sensitive settings</a></li>
        <li><form method="post" action="/logout"><input type="hidden" name="csrf" value="${escapeHtml(csrf)}"><button type="submit">Sign out</button></form></li>
      </ul>
    </nav>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${escapeHtml(title)} – Mail</title>
  <link rel="stylesheet" href="/style.css">
</head>
<body>
  <header class="bar">
    <a class="brand" href="/">Mail</a>
    ${nav}
  </header>
  <main id="main">
${body}
  </main>
  <footer>
    <p>A sample application that signs in through Portcullis (<code>examples/mail-app</code>).</p>
  </footer>
</body>
</html>
`;
}

export interface Message {
  from: string;
  subject: string;
  received: string;
}

export const MESSAGES: readonly Message[] = [
  { from: 'Ward 7 rota', subject: 'Your shifts for next week', received: '08:12' },
  { from: 'Pharmacy', subject: 'Controlled drugs audit on Thursday', received: 'Yesterday' },
  { from: 'IT service desk', subject: 'Move to push sign-in before the deadline', received: 'Monday' },
];

export interface ClaimRow {
  claim: string;
  value: string;
  source: string;
}

export function inbox(options: { name: string; email: string; claims: ClaimRow[]; signature: { alg: string; kid: string; jwksUri: string } }): string {
  const rows = MESSAGES.map((m) => `        <tr><td>${escapeHtml(m.from)}</td><td>${escapeHtml(m.subject)}</td><td>${escapeHtml(m.received)}</td></tr>`).join('\n');
  const claims = options.claims.map((c) => `        <tr><th scope="row"><code>${escapeHtml(c.claim)}</code></th><td><code>${escapeHtml(c.value)}</code></td><td>${escapeHtml(c.source)}</td></tr>`).join('\n');
  return `    <h1>Inbox</h1>
    <p>Signed in as <strong id="person">${escapeHtml(options.name)}</strong> (${escapeHtml(options.email)}).</p>
    <table>
      <caption>Messages</caption>
      <thead><tr><th scope="col">From</th><th scope="col">Subject</th><th scope="col">Received</th></tr></thead>
      <tbody>
${rows}
      </tbody>
    </table>
    <h2>What Portcullis told Mail</h2>
    <table>
      <caption>Claims received at sign-in</caption>
      <thead><tr><th scope="col">Claim</th><th scope="col">Value</th><th scope="col">From</th></tr></thead>
      <tbody>
${claims}
      </tbody>
    </table>
    <p id="signature">The ID token's signature was verified against the issuer's JWKS (<code>${escapeHtml(options.signature.jwksUri)}</code>): key <code>${escapeHtml(options.signature.kid)}</code>, algorithm <code>${escapeHtml(options.signature.alg)}</code>.</p>`;
}

export function signedOut(notice: 'none' | 'signed-out' | 'ended-by-portcullis'): string {
  const heading = notice === 'signed-out' ? 'You have signed out' : notice === 'ended-by-portcullis' ? 'You have been signed out' : 'Welcome to Mail';
  const why =
    notice === 'signed-out'
      ? '<p>You have signed out of Mail and of Portcullis.</p>'
      : notice === 'ended-by-portcullis'
        ? '<p>Portcullis ended your session (someone signed you out everywhere, or your account needs attention).</p>'
        : '<p>Mail uses your Portcullis account: you sign in there, and come back here.</p>';
  return `    <h1>${heading}</h1>
    ${why}
    <p><a class="button" href="/login">Sign in with Portcullis</a></p>`;
}

export function settings(options: { confirmedAt: string }): string {
  return `    <h1>Sensitive settings</h1>
    <p>You confirmed it was you with an approved push on your phone (sign-in at ${escapeHtml(options.confirmedAt)}).</p>
    <dl>
      <dt>Forwarding</dt><dd>Off</dd>
      <dt>Recovery address</dt><dd>None</dd>
      <dt>Delegated access</dt><dd>Nobody</dd>
    </dl>
    <p><a href="/">Back to the inbox</a></p>`;
}

export function problem(options: { heading: string; text: string; reference?: string }): string {
  return `    <h1>${escapeHtml(options.heading)}</h1>
    <p>${escapeHtml(options.text)}</p>
    ${options.reference ? `<p>Reference: <code>${escapeHtml(options.reference)}</code></p>` : ''}
    <p><a href="/">Back to Mail</a></p>`;
}
