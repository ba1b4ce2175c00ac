import { describe, expect, it } from 'vitest';
import { ADMIN_ACTIONS, administers, authorityOf, may, mayChangeRole, visibleOrganisations } from './scope.js';

describe('admin scope (issue #15 point 1)', () => {
  it('lets a global administrator do everything, everywhere', () => {
    const authority = authorityOf([{ role: 'global-admin', scope: '*' }]);
    for (const action of ADMIN_ACTIONS) expect(may(authority, action, 'org-a')).toBe(true);
    expect(may(authority, 'edit-policy', null)).toBe(true);
    expect(visibleOrganisations(authority)).toBe('everywhere');
  });

  it('keeps a local administrator to their own organisations, and off the policy', () => {
    const authority = authorityOf([{ role: 'local-admin', scope: 'org-a' }, { role: 'local-admin', scope: 'org-b' }, { role: 'user', scope: '*' }]);
    expect(may(authority, 'issue-pass', 'org-a')).toBe(true);
    expect(may(authority, 'disable', 'org-b')).toBe(true);
    expect(may(authority, 'view', 'org-c')).toBe(false);
    expect(may(authority, 'issue-pass', 'org-c')).toBe(false);
    expect(may(authority, 'edit-policy', null)).toBe(false);
    expect(may(authority, 'edit-policy', 'org-a')).toBe(false);
    expect(visibleOrganisations(authority)).toEqual(['org-a', 'org-b']);
  });

  it('lets the helpdesk look people up and issue passes, not change roles or the policy', () => {
    const everywhere = authorityOf([{ role: 'helpdesk', scope: '*' }]);
    expect(may(everywhere, 'view', 'org-z')).toBe(true);
    expect(may(everywhere, 'issue-pass', 'org-z')).toBe(true);
    expect(may(everywhere, 'change-roles', 'org-z')).toBe(false);
    expect(may(everywhere, 'disable', 'org-z')).toBe(false);
    expect(may(everywhere, 'edit-policy', null)).toBe(false);
    const scoped = authorityOf([{ role: 'helpdesk', scope: 'org-a' }]);
    expect(may(scoped, 'issue-pass', 'org-b')).toBe(false);
  });

  it('gives a plain user, or no role, nothing', () => {
    expect(administers(authorityOf([{ role: 'user', scope: '*' }]))).toBe(false);
    expect(administers(authorityOf([]))).toBe(false);
    expect(visibleOrganisations(authorityOf([]))).toEqual([]);
    expect(may(authorityOf([{ role: 'user', scope: '*' }]), 'view', 'org-a')).toBe(false);
  });

  it('takes the widest grant: a global helpdesk grant beside a scoped local-admin one', () => {
    const authority = authorityOf([{ role: 'local-admin', scope: 'org-a' }, { role: 'helpdesk', scope: '*' }]);
    expect(may(authority, 'view', 'org-z')).toBe(true);
    expect(may(authority, 'issue-pass', 'org-z')).toBe(true);
    expect(may(authority, 'disable', 'org-z')).toBe(false);
    expect(may(authority, 'disable', 'org-a')).toBe(true);
  });

  it('lets a local administrator grant roles only within their organisations, never global administrator', () => {
    const local = authorityOf([{ role: 'local-admin', scope: 'org-a' }]);
    expect(mayChangeRole(local, 'user', 'org-a', [])).toBe(true);
    expect(mayChangeRole(local, 'helpdesk', 'org-a', ['org-a'])).toBe(true);
    expect(mayChangeRole(local, 'helpdesk', 'org-a', [])).toBe(false);
    expect(mayChangeRole(local, 'local-admin', 'org-a', ['org-a', 'org-b'])).toBe(false);
    expect(mayChangeRole(local, 'global-admin', 'org-a', [])).toBe(false);
    expect(mayChangeRole(local, 'user', 'org-b', [])).toBe(false);
    expect(mayChangeRole(authorityOf([{ role: 'helpdesk', scope: '*' }]), 'user', 'org-a', [])).toBe(false);
    const global = authorityOf([{ role: 'global-admin', scope: '*' }]);
    expect(mayChangeRole(global, 'global-admin', 'org-z', [])).toBe(true);
  });
});
