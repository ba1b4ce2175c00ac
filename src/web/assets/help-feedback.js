// The "Was this article helpful?" CAPTCHA (docs/help.md): ALTCHA's CSP-friendly build (no inline styles or
// workers; its CSS is a file of its own), with the PBKDF2 worker served from this origin.
import './altcha/altcha.js';

const worker = () => new Worker('/assets/altcha/workers/pbkdf2.js');
for (const algorithm of ['PBKDF2/SHA-256']) globalThis.$altcha.algorithms.set(algorithm, worker);
