/**
 * Read, change, replace, as a Kubernetes client does it: the fake's rollouts write a Deployment's
 * status (a new resourceVersion) as pods become ready, so a replace may meet 409 Conflict; it is
 * redone from a fresh read, up to 10 times. Any other error, or a tenth Conflict, is thrown.
 */
export async function replaceFresh<T>(
  read: () => Promise<T>,
  change: (current: T) => void,
  replace: (changed: T) => Promise<T>,
): Promise<{ current: T; replaced: T }> {
  for (let attempt = 1; ; attempt++) {
    const current = await read();
    change(current);
    try {
      return { current, replaced: await replace(current) };
    } catch (err) {
      if ((err as { code?: number }).code !== 409 || attempt === 10) throw err;
    }
  }
}
