import type { HttpResourceConfig, ResourceConfig } from '../../config/index.js';

/** An HTTP resource with its upstream URL taken apart once. */
export interface HttpRoute {
  readonly resource: HttpResourceConfig;
  /** Lower-case host the resource is matched by, or `null` for any host. */
  readonly host: string | null;
  /** `/app/`, or `null` when the resource is matched by host alone. */
  readonly prefix: string | null;
  /** `http://host:port` of the upstream. */
  readonly origin: string;
  /** Path of the upstream URL without its trailing `/` (`''` for the root). */
  readonly basePath: string;
}

export type RouteMatch =
  | {
      readonly kind: 'resource';
      readonly route: HttpRoute;
      /**
       * The path as the upstream receives it (prefix stripped when configured, base path of the
       * upstream URL prepended): the path policy decides on.
       */
      readonly upstreamPath: string;
    }
  /** The path is the prefix without its final `/`: send the browser to the prefix. */
  | { readonly kind: 'add-slash'; readonly location: string }
  | { readonly kind: 'none' };

/**
 * Finds the resource a request is for. The most specific match wins: host and path prefix, then
 * host alone, then path prefix alone; among prefixes the longest. Hosts compare without port and
 * case; paths compare exactly (they are normalised first, see `normalizeRequestTarget`).
 */
export class ResourceRouter {
  readonly routes: readonly HttpRoute[];
  /** The distinct hosts resources are matched by, lower case. */
  readonly hosts: readonly string[];

  constructor(resources: readonly ResourceConfig[]) {
    const routes = resources.filter((resource): resource is HttpResourceConfig => resource.kind === 'http').map(toRoute);
    this.routes = routes.sort((a, b) => specificity(b) - specificity(a));
    this.hosts = [...new Set(routes.flatMap((route) => (route.host === null ? [] : [route.host])))];
  }

  /** @param hostname lower-case host without port; @param path normalised path. */
  match(hostname: string, path: string): RouteMatch {
    for (const route of this.routes) {
      if (route.host !== null && route.host !== hostname) continue;
      const prefix = route.prefix;
      if (prefix === null) return { kind: 'resource', route, upstreamPath: `${route.basePath}${path}` };
      if (path.startsWith(prefix)) {
        const rest = route.resource.strip_prefix ? path.slice(prefix.length - 1) : path;
        return { kind: 'resource', route, upstreamPath: `${route.basePath}${rest}` };
      }
      if (path.length === prefix.length - 1 && prefix.startsWith(path)) return { kind: 'add-slash', location: prefix };
    }
    return { kind: 'none' };
  }
}

function toRoute(resource: HttpResourceConfig): HttpRoute {
  const upstream = new URL(resource.upstream);
  return {
    resource,
    host: resource.match.host?.toLowerCase() ?? null,
    prefix: resource.match.path_prefix ?? null,
    origin: upstream.origin,
    basePath: upstream.pathname.replace(/\/+$/, ''),
  };
}

function specificity(route: HttpRoute): number {
  return (route.host === null ? 0 : 1_000_000) + (route.prefix?.length ?? 0);
}
