import type { NamedPolicy } from './inventory.js';
import { type DecidingStatement, simulate } from './simulate.js';

/**
 * Known ways an IAM principal can raise its own privileges (after Rhino Security Labs' list). A path
 * applies when the simulator allows EVERY one of its actions on any resource of the action's type.
 */
export interface EscalationPath {
  id: string;
  actions: string[];
  why: string;
}

export const ESCALATION_PATHS: EscalationPath[] = [
  {
    id: 'passrole-ec2',
    actions: ['iam:PassRole', 'ec2:RunInstances'],
    why: 'start an instance with a more privileged role and use its credentials',
  },
  {
    id: 'passrole-lambda',
    actions: ['iam:PassRole', 'lambda:CreateFunction', 'lambda:InvokeFunction'],
    why: 'create and run a function under a more privileged role',
  },
  {
    id: 'passrole-cloudformation',
    actions: ['iam:PassRole', 'cloudformation:CreateStack'],
    why: 'let a stack with a more privileged role create anything',
  },
  {
    id: 'create-policy-version',
    actions: ['iam:CreatePolicyVersion'],
    why: 'write a new default version of a policy it already has',
  },
  {
    id: 'set-default-policy-version',
    actions: ['iam:SetDefaultPolicyVersion'],
    why: 'switch a policy to a more permissive older version',
  },
  {
    id: 'attach-user-policy',
    actions: ['iam:AttachUserPolicy'],
    why: 'attach AdministratorAccess to itself',
  },
  {
    id: 'attach-group-policy',
    actions: ['iam:AttachGroupPolicy'],
    why: 'attach AdministratorAccess to its own group',
  },
  {
    id: 'attach-role-policy',
    actions: ['iam:AttachRolePolicy', 'sts:AssumeRole'],
    why: 'attach AdministratorAccess to a role it can assume',
  },
  { id: 'put-user-policy', actions: ['iam:PutUserPolicy'], why: 'write an inline admin policy on itself' },
  {
    id: 'put-group-policy',
    actions: ['iam:PutGroupPolicy'],
    why: 'write an inline admin policy on its own group',
  },
  {
    id: 'put-role-policy',
    actions: ['iam:PutRolePolicy', 'sts:AssumeRole'],
    why: 'write an inline admin policy on a role it can assume',
  },
  {
    id: 'update-assume-role-policy',
    actions: ['iam:UpdateAssumeRolePolicy', 'sts:AssumeRole'],
    why: 'trust itself in a privileged role and assume it',
  },
  {
    id: 'create-access-key',
    actions: ['iam:CreateAccessKey'],
    why: 'create access keys for another (privileged) user',
  },
  {
    id: 'create-login-profile',
    actions: ['iam:CreateLoginProfile'],
    why: 'give a privileged user without a password a console password',
  },
  {
    id: 'update-login-profile',
    actions: ['iam:UpdateLoginProfile'],
    why: "reset a privileged user's console password",
  },
  { id: 'add-user-to-group', actions: ['iam:AddUserToGroup'], why: 'add itself to a more privileged group' },
];

export interface EscalationHit {
  path: EscalationPath;
  /** the statements that allow each action */
  evidence: DecidingStatement[];
}

/** Every escalation path the policies open, each checked by simulation against any resource (`*`). */
export async function escalationPaths(
  principalArn: string,
  policies: NamedPolicy[],
): Promise<EscalationHit[]> {
  if (policies.length === 0) return [];
  const cache = new Map<string, Awaited<ReturnType<typeof simulate>>>();
  const allowed = async (action: string) => {
    let r = cache.get(action);
    if (!r) {
      r = await simulate(policies, { principalArn, action, resource: '*' });
      cache.set(action, r);
    }
    return r;
  };
  const hits: EscalationHit[] = [];
  for (const path of ESCALATION_PATHS) {
    const results = [];
    for (const action of path.actions) {
      const r = await allowed(action);
      if (!r.allowed) break;
      results.push(r);
    }
    if (results.length === path.actions.length)
      hits.push({ path, evidence: results.flatMap((r) => r.deciding) });
  }
  return hits;
}
