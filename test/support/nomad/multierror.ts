/**
 * Error text the way Nomad's server renders it: hashicorp/go-multierror's ListFormatFunc
 * (`1 error occurred:\n\t* msg\n\n`, or `N errors occurred:\n\t* a\n\t* b\n\n`). Nomad appends
 * most errors flat (multierror.Append flattens), but wraps a group's and a task's own list in a
 * prefix with %v, so the inner list's text appears inside the outer bullet: a NomadError with a
 * prefix is such a nested list.
 */
export type NomadError = string | { prefix: string; errors: NomadError[] };

function render(e: NomadError): string {
  return typeof e === 'string' ? e : `${e.prefix}${multiError(e.errors)}`;
}

export function multiError(errors: NomadError[]): string {
  if (errors.length === 1) return `1 error occurred:\n\t* ${render(errors[0]!)}\n\n`;
  const points = errors.map((e) => `* ${render(e)}`);
  return `${errors.length} errors occurred:\n\t${points.join('\n\t')}\n\n`;
}
