/**
 * Pages the units share: the sign-in code form every typed method uses, a QR code drawn as SVG (no
 * script, so it works under our CSP), and the refusal of a wrong first code.
 */
import { errorForVerification, type CodeVerification } from '../../core/sign-in/flow.js';
import type { MethodDefinition } from '../../core/methods/registry.js';
import type { EnrolmentOutcome, MethodPage } from './unit.js';

/** The sign-in page of a typed method: its heading and prompt from the definition, a code field. */
export function codePage(definition: MethodDefinition, detail: string, options: { canResend: boolean; passLike?: boolean; label?: string }): MethodPage {
  return {
    template: 'sign-in/verify.njk',
    data: {
      heading: definition.heading,
      prompt: definition.prompt.replace('{detail}', detail),
      isPass: options.passLike ?? false,
      codeLabel: options.label ?? 'Code',
      canResend: options.canResend,
    },
  };
}

/** A QR code as an inline SVG image with its text alternative. */
export async function qrCodeSvg(text: string, label: string): Promise<string> {
  // Loaded at the first QR code drawn, not at start.
  const { default: QRCode } = await import('qrcode');
  const svg = await QRCode.toString(text, { type: 'svg', margin: 2, errorCorrectionLevel: 'M' });
  return svg.replace('<svg ', `<svg role="img" aria-label="${label}" focusable="false" `);
}

/** A first code that was not right, as the set-up page shows it again. */
export function refusedCode(reason: Exclude<CodeVerification, { ok: true }>['reason']): EnrolmentOutcome {
  const code = errorForVerification(reason);
  return { type: 'refused', error: { code, params: code === 'code-format' ? { digits: 6 } : {}, field: 'code' } };
}
