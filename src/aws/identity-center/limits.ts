/**
 * What IAM Identity Center's SCIM endpoint accepts (AWS docs, "SCIM implementation developer guide"
 * → "Constraints"): Ferry stays within these, and the test server fails any request that breaks one.
 */
export const IDENTITY_CENTER_LIMITS = {
  /** member values in one PatchGroup, and in the `members` of one CreateGroup */
  membersPerRequest: 100,
  /** `count` of one list request */
  pageSize: 50,
} as const;
