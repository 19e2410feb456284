import { Certificates } from './certificates';
import { invalid, IotRequest, IotRoute, notFound } from './iot-api';
import { page, pageSizeQuery } from './params';
import { Things } from './things';

/**
 * Principals (certificates) attached to things: AttachThingPrincipal (EXCLUSIVE_THING or NON_EXCLUSIVE_THING),
 * DetachThingPrincipal, ListThingPrincipals. The principal travels in the `x-amzn-principal` header.
 */
export class ThingPrincipals {
  /** thing name → principal ARN → thingPrincipalType. */
  private readonly byThing = new Map<string, Map<string, string>>();

  constructor(
    private readonly things: Things,
    private readonly certificates: Certificates,
  ) {}

  routes(): IotRoute[] {
    return [
      { method: 'PUT', path: /^\/things\/([^/]+)\/principals$/, operation: 'AttachThingPrincipal', handle: (req) => this.attach(req) },
      { method: 'DELETE', path: /^\/things\/([^/]+)\/principals$/, operation: 'DetachThingPrincipal', handle: (req) => this.detach(req) },
      { method: 'GET', path: /^\/things\/([^/]+)\/principals$/, operation: 'ListThingPrincipals', handle: (req) => this.list(req) },
    ];
  }

  /** Principal ARNs attached to a thing. */
  principalsOf(thingName: string): string[] {
    return [...(this.byThing.get(thingName)?.keys() ?? [])];
  }

  /** Thing names a principal (certificate ARN) is attached to. */
  thingsOf(principal: string): string[] {
    return [...this.byThing.entries()].filter(([, principals]) => principals.has(principal)).map(([name]) => name);
  }

  private attach(req: IotRequest): unknown {
    const thing = this.things.record(req.params[0]);
    const principal = principalHeader(req);
    const type = req.query.get('thingPrincipalType') ?? 'NON_EXCLUSIVE_THING';
    if (type !== 'EXCLUSIVE_THING' && type !== 'NON_EXCLUSIVE_THING') throw invalid(`thingPrincipalType must be EXCLUSIVE_THING or NON_EXCLUSIVE_THING, not ${type}`);
    this.certificates.principal(principal, 'principal');
    for (const [otherThing, principals] of this.byThing) {
      const otherType = principals.get(principal);
      if (otherThing === thing.name || otherType === undefined) continue;
      if (otherType === 'EXCLUSIVE_THING' || type === 'EXCLUSIVE_THING') {
        throw invalid(`The principal is attached to thing ${otherThing} and one of the attachments is EXCLUSIVE_THING`);
      }
    }
    const principals = this.byThing.get(thing.name) ?? new Map<string, string>();
    principals.set(principal, type);
    this.byThing.set(thing.name, principals);
    return {};
  }

  /**
   * An unknown thing or certificate, and a principal that is not attached to the thing, are ResourceNotFoundException
   * (as in moto; AWS does not document which it answers for a missing attachment, so callers must take both a
   * success and a 404 as "detached"). AWS detaches asynchronously; here it is at once.
   */
  private detach(req: IotRequest): unknown {
    const thing = this.things.record(req.params[0]);
    const principal = principalHeader(req);
    this.certificates.principal(principal, 'principal');
    if (!this.byThing.get(thing.name)?.delete(principal)) {
      throw notFound(`The principal ${principal} is not attached to thing ${thing.name}`);
    }
    return {};
  }

  private list(req: IotRequest): unknown {
    const thing = this.things.record(req.params[0]);
    const { items, next } = page(this.principalsOf(thing.name), pageSizeQuery(req.query, 'maxResults'), req.query.get('nextToken'));
    return { principals: items, nextToken: next };
  }
}

function principalHeader(req: IotRequest): string {
  const principal = req.headers['x-amzn-principal'];
  if (typeof principal !== 'string' || principal.length === 0) throw invalid('the principal (x-amzn-principal header) is required');
  return principal;
}
