// Passkeys (WebAuthn) in the browser, with SimpleWebAuthn's browser bundle, which
// /assets/simplewebauthn-browser.js loads as window.SimpleWebAuthnBrowser before this module runs.
//
// Each <form data-webauthn="…" data-options="ID"> holds a hidden input name="credential", an element
// [data-webauthn-error] (role="alert", hidden until there is something to say) and a submit button.
// The options are the server's JSON in <script type="application/json" id="ID">. Once the browser has
// a result it goes, as JSON, into the credential input, and the form is posted: the server checks it.
//
//   register      add a passkey (startRegistration) when the form is submitted
//   authenticate  second factor (startAuthentication) when submitted, and once on load with data-autostart
//   conditional   first factor on the email page: offered in the browser's autofill in the background,
//                 and by a button that asks in the usual (modal) way
//
// Without JavaScript the pages say so in <noscript>; without WebAuthn the button is turned off.

const NO_WEBAUTHN = 'This browser cannot use passkeys. Sign in another way.';

/** @param {unknown} error */
function errorName(error) {
  return error && typeof error === 'object' && 'name' in error ? String(error.name) : '';
}

/** @param {unknown} error */
function errorCode(error) {
  return error && typeof error === 'object' && 'code' in error ? String(error.code) : '';
}

/** A conditional (autofill) request that was cancelled: by a newer request, or by the page itself. */
function isAbort(error) {
  return errorName(error) === 'AbortError' || errorCode(error) === 'ERROR_CEREMONY_ABORTED';
}

/**
 * Plain English for what went wrong. Browsers report a cancelled prompt, a timeout and a refusal
 * alike, as NotAllowedError, so that message covers all three.
 * @param {'register' | 'authenticate'} ceremony
 * @param {unknown} error
 */
function messageFor(ceremony, error) {
  const name = errorName(error);
  const code = errorCode(error);
  if (ceremony === 'register' && (name === 'InvalidStateError' || code === 'ERROR_AUTHENTICATOR_PREVIOUSLY_REGISTERED')) {
    return 'This passkey is already registered to your account. Use a different passkey or security key.';
  }
  if (name === 'NotAllowedError') {
    return ceremony === 'register'
      ? 'The passkey was not added. You may have cancelled it, or it took too long. Try again.'
      : 'The passkey was not used. You may have cancelled it, or it took too long. Try again.';
  }
  if (isAbort(error)) {
    return ceremony === 'register' ? 'Adding the passkey was cancelled. Try again.' : 'Signing in with a passkey was cancelled. Try again.';
  }
  if (name === 'SecurityError' || code === 'ERROR_INVALID_DOMAIN' || code === 'ERROR_INVALID_RP_ID') {
    return 'Passkeys cannot be used on this web address. Sign in another way.';
  }
  if (name === 'NotSupportedError' || name === 'ConstraintError' || code.startsWith('ERROR_AUTHENTICATOR_')) {
    return ceremony === 'register'
      ? 'This device or security key cannot be used as a passkey here. Try a different one.'
      : 'This device or security key cannot be used here. Try a different one, or sign in another way.';
  }
  return ceremony === 'register' ? 'Something went wrong adding the passkey. Try again.' : 'Something went wrong using the passkey. Try again, or sign in another way.';
}

/** @param {HTMLFormElement} form */
function setUp(form) {
  const mode = form.dataset.webauthn;
  const errorBox = form.querySelector('[data-webauthn-error]');
  const credential = form.querySelector('input[name="credential"]');
  const buttons = [...form.querySelectorAll('button, input[type="submit"]')];

  /** @param {string} text */
  const showError = (text) => {
    if (!errorBox) return;
    errorBox.textContent = text;
    errorBox.hidden = false;
  };
  const clearError = () => {
    if (!errorBox) return;
    errorBox.textContent = '';
    errorBox.hidden = true;
  };
  const setBusy = (busy) => {
    for (const button of buttons) {
      button.disabled = busy;
      if (busy) button.setAttribute('aria-disabled', 'true');
      else button.removeAttribute('aria-disabled');
    }
  };

  const browser = window.SimpleWebAuthnBrowser;
  if (!window.PublicKeyCredential || !browser || !browser.browserSupportsWebAuthn()) {
    // Say why the button does nothing, and turn it off; the rest of the page still works.
    showError(NO_WEBAUTHN);
    setBusy(true);
    return;
  }

  let optionsJSON;
  try {
    const source = document.getElementById(form.dataset.options || '');
    optionsJSON = JSON.parse(source ? source.textContent || '' : '');
  } catch {
    optionsJSON = undefined;
  }
  if (!optionsJSON || !credential) {
    showError(mode === 'register' ? 'Something went wrong. Reload the page and try again.' : 'Something went wrong. Reload the page, or sign in another way.');
    setBusy(true);
    return;
  }

  const ceremony = mode === 'register' ? 'register' : 'authenticate';
  let running = false;

  /** @param {object} result */
  const send = (result) => {
    credential.value = JSON.stringify(result);
    form.submit();
  };

  // A modal request: the browser's own passkey prompt. Starting one aborts any request in progress,
  // the conditional one included (WebAuthnAbortService, inside startRegistration/startAuthentication).
  const run = async () => {
    if (running) return;
    running = true;
    clearError();
    setBusy(true);
    try {
      const result =
        ceremony === 'register'
          ? await browser.startRegistration({ optionsJSON })
          : await browser.startAuthentication({ optionsJSON });
      send(result);
      // The page is on its way out: leave the button off so it is not pressed twice.
    } catch (error) {
      showError(messageFor(ceremony, error));
      setBusy(false);
      running = false;
    }
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void run();
  });

  if (mode === 'authenticate' && form.hasAttribute('data-autostart')) {
    // The person has just arrived at the second-factor step: ask at once. If the browser refuses
    // without a user gesture, the message says to try again, and the button does.
    void run();
  }

  if (mode === 'conditional') void startConditional(browser, optionsJSON, send, () => running);
}

/**
 * Offer the passkeys in the browser's autofill, on the email field (autocomplete "username webauthn").
 * Pending until the person picks one; a modal request (the button) cancels it, which is an AbortError.
 */
async function startConditional(browser, optionsJSON, send, modalRunning) {
  try {
    if (!(await browser.browserSupportsWebAuthnAutofill())) return;
    // Autofill needs an input whose autocomplete ends in "webauthn"; without one there is nothing to offer.
    if (!document.querySelector("input[autocomplete$='webauthn']")) return;
    const result = await browser.startAuthentication({ optionsJSON, useBrowserAutofill: true });
    if (!modalRunning()) send(result);
  } catch (error) {
    // Aborted by the button's modal request, or the autofill was otherwise unavailable: the button
    // still works, so say nothing.
    if (!isAbort(error)) console.debug('Passkey autofill unavailable:', error);
  }
}

function init() {
  for (const form of document.querySelectorAll('form[data-webauthn]')) setUp(/** @type {HTMLFormElement} */ (form));
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
