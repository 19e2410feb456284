import { Role } from './roles';

/** The kinds of actor an audit event can name (the OpenAPI enum of `actor.type` is this list). */
export const ACTOR_TYPES = ['api-key', 'system', 'aws-iot-rule', 'claim-certificate', 'device-certificate'] as const;
export type ActorType = (typeof ACTOR_TYPES)[number];

/** Who did something: recorded on every audit event. */
export interface Actor {
  type: ActorType;
  /** API key id, certificate fingerprint, or a fixed name for the service itself. */
  id: string;
  role: Role | null;
}

/** Per-request facts the services need for auditing. */
export interface RequestContext {
  actor: Actor;
  requestId: string | null;
  sourceIp: string | null;
}

export const SYSTEM_CONTEXT: RequestContext = {
  actor: { type: 'system', id: 'fleet-pki', role: null },
  requestId: null,
  sourceIp: null,
};
