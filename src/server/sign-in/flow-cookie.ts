import type { FastifyRequest } from 'fastify';
import type { AppContext } from '../../app/context.js';
import { loadSignInFlow } from '../../app/sign-in.js';
import type { SignInState } from '../../core/sign-in/flow.js';
import { SIGN_IN_COOKIE } from '../cookies.js';

/** This browser's flow (sign-in, step-up or reset), if it is at the step a page is for. */
export async function flowAt<S extends SignInState['step']>(
  ctx: AppContext,
  request: FastifyRequest,
  step: S,
): Promise<{ token: string; state: Extract<SignInState, { step: S }> } | null> {
  const token = request.cookies[SIGN_IN_COOKIE];
  const state = await loadSignInFlow(ctx, token);
  if (!token || state?.step !== step) return null;
  return { token, state: state as Extract<SignInState, { step: S }> };
}
