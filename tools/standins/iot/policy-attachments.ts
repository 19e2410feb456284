import { Certificates } from './certificates';
import { IotRequest, IotRoute, limitExceeded } from './iot-api';
import { booleanQuery, page, pageSizeQuery, policyNameParam, requiredString } from './params';
import { Policies } from './policies';

/** Policies attached to targets (certificate ARNs), at most 10 each: AttachPolicy, DetachPolicy, ListAttachedPolicies. */
export class PolicyAttachments {
  /** target (certificate ARN) → policy names, in attachment order. */
  private readonly byTarget = new Map<string, Set<string>>();

  constructor(
    private readonly policies: Policies,
    private readonly certificates: Certificates,
  ) {}

  routes(): IotRoute[] {
    return [
      { method: 'PUT', path: /^\/target-policies\/([^/]+)$/, operation: 'AttachPolicy', handle: (req) => this.attach(req) },
      { method: 'POST', path: /^\/target-policies\/([^/]+)$/, operation: 'DetachPolicy', handle: (req) => this.detach(req) },
      { method: 'POST', path: /^\/attached-policies\/([^/]+)$/, operation: 'ListAttachedPolicies', handle: (req) => this.list(req) },
    ];
  }

  /** Policy names attached to a target (certificate ARN). */
  attachedTo(target: string): string[] {
    return [...(this.byTarget.get(target) ?? [])];
  }

  private attach(req: IotRequest): unknown {
    const policy = this.policies.record(req.params[0]);
    const target = requiredString(req.body, 'target');
    this.certificates.principal(target, 'target');
    const attached = this.byTarget.get(target) ?? new Set<string>();
    if (!attached.has(policy.name) && attached.size >= 10) throw limitExceeded('At most 10 policies can be attached to a target');
    attached.add(policy.name);
    this.byTarget.set(target, attached);
    return {};
  }

  private detach(req: IotRequest): unknown {
    const name = policyNameParam(req.params[0]);
    const target = requiredString(req.body, 'target');
    this.byTarget.get(target)?.delete(name);
    return {};
  }

  private list(req: IotRequest): unknown {
    const target = req.params[0];
    this.certificates.principal(target, 'target');
    booleanQuery(req.query, 'recursive');
    const policies = this.attachedTo(target).map((name) => ({ policyName: name, policyArn: this.policies.records.get(name)?.arn }));
    const { items, next } = page(policies, pageSizeQuery(req.query, 'pageSize'), req.query.get('marker'));
    return { policies: items, nextMarker: next };
  }
}
