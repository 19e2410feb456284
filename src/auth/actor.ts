import { Role } from './roles';

/** Who did something: recorded on every audit event. */
export interface Actor {
  type: 'api-key' | 'system' | 'aws-iot-rule' | 'claim-certificate' | 'device-certificate';
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
