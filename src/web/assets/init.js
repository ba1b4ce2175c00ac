// Starts the NHS.UK frontend's components (header menu, error summary focus, password reveal).
import { initAll } from '/assets/nhsuk-frontend.min.js';

initAll();
