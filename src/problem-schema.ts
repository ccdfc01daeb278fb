import { Type } from '@sinclair/typebox';

/** RFC 7807 problem details as route schemas declare them (for validation of responses and OpenAPI). */
export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.Optional(Type.String()),
    instance: Type.Optional(Type.String()),
  },
  { additionalProperties: true, description: 'RFC 7807 problem details' },
);

export const problemResponses = {
  400: ProblemSchema,
  401: ProblemSchema,
  404: ProblemSchema,
  409: ProblemSchema,
  503: ProblemSchema,
};
