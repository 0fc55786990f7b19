/** Stack spec fixtures shared by the unit tests and the api tests. */
import { formatProblems, type SpecProblem } from '../../src/shared/spec/problems.js';
import { parseStack } from '../../src/shared/spec/stack.js';

/** The README's example stack, as YAML. */
export const STACK_YAML = `
name: platform
repo: {url: https://git.example.com/acme/infra.git, branch: main}
path: stacks/platform
engine: opentofu
webhookSecret: "s3cret-s3cret-s3cret"
feedback: {provider: github, repo: acme/infra, apiUrl: https://api.github.com, tokenEnv: NORN_GITHUB_TOKEN}
drift: {schedule: "0 6 * * *", timezone: Europe/Berlin}
images: [{name: web, dockerfile: app/Dockerfile}]
verify:
  - http: {url: https://app.example.com/healthz, status: 200, contains: ok}
  - pods: {namespace: default, selector: app=web}
  - runner: {url: https://gitlab.example.com/api/v4/runners?tag_list=infra, tokenEnv: NORN_GITLAB_TOKEN, tags: [infra]}
`;

/** A minimal valid stack (as a parsed object) with `patch` applied on top. */
export const aStack = (patch: Record<string, unknown> = {}) => ({
  name: 'net',
  repo: { url: 'https://git.example.com/acme/infra.git' },
  path: 'stacks/net',
  ...patch,
});

export function stackProblems(input: unknown): SpecProblem[] {
  const result = parseStack(input);
  if (result.ok) throw new Error(`expected problems, got a valid stack: ${JSON.stringify(result)}`);
  return result.problems;
}

export function stackOf(input: unknown) {
  const result = parseStack(input);
  if (!result.ok) throw new Error(`expected a valid stack:\n${formatProblems(result.problems)}`);
  return result;
}
