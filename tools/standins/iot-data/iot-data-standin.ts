import { randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { AttachPolicyCommand, AttachThingPrincipalCommand, AddThingToThingGroupCommand, CreateThingCommand, IoTClient, UpdateCertificateCommand } from '@aws-sdk/client-iot';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import type { IotStandIn } from '../iot/iot-standin';
import { planRegisterThing, TemplateError } from './provisioning-templates';
import { selfSignedServerCertificate } from './server-certificate';

/** What AWS IoT hands the certificate provider Lambda, and what it returns (integrations/aws-lambda/src/certificate-provider.ts). */
export type CertificateProviderHandler = (event: { certificateSigningRequest: string; principalId: string; clientId: string }) => Promise<{ certificatePem: string }>;
/** The pre-authentication Lambda of a domain configuration (integrations/aws-lambda/src/client-certificate-check.ts). */
export type ClientCertificateHandler = (event: {
  connectionMetadata: { id: string };
  principalId: string;
  serverName: string;
  clientCertificateChain: string[];
}) => Promise<{ isAuthenticated: boolean }>;

export interface IotDataStandInOptions {
  /** The control-plane stand-in whose certificates, things and policies this data plane uses. */
  iot: IotStandIn;
  /** The account's certificate provider (CreateCertificateProvider), invoked in process for each CreateCertificateFromCsr. */
  certificateProvider?: CertificateProviderHandler;
  /** The domain configuration's clientCertificateCallbackArn, invoked in process at each CONNECT. */
  clientCertificateCheck?: ClientCertificateHandler;
  /** Fleet provisioning templates by name: the template body (JSON text, as CreateProvisioningTemplate takes it). */
  templates?: Record<string, string>;
  /** The endpoint name (SNI) of the domain configuration; default iot.standin.local. */
  serverName?: string;
  /** The listener's certificate and key (PEM); a self-signed one is made when absent (see `serverCertificatePem`). */
  serverTls?: { certPem: string; keyPem: string };
}

/** One CONNECT as the stand-in judged it. */
export interface IotDataConnection {
  clientId: string;
  certificateId: string | null;
  accepted: boolean;
  /** Why it was refused: 'pre-authentication', or the control plane's reason (unknown, INACTIVE, JITR registered it, …). */
  reason: string | null;
  at: number;
  /** The pre-authentication handler's own time, ms (null when none ran). */
  preAuthMs: number | null;
}

/** One application message a device published (fleet-provisioning requests excluded). */
export interface IotDataMessage {
  clientId: string;
  certificateId: string;
  topic: string;
  payload: string;
}

const CREATE_FROM_CSR = '$aws/certificates/create-from-csr/json';
const REGISTER_THING = /^\$aws\/provisioning-templates\/([\w.:-]{1,36})\/provision\/json$/;
const OWNERSHIP_TOKEN_LIFETIME_MS = 60 * 60 * 1000;

interface Session {
  certificateId: string;
  certificateArn: string;
}

/**
 * A stand-in for the AWS IoT data plane (MQTT over mutual TLS) on a loopback port, built on aedes, a real MQTT broker
 * library, in this process: the handlers AWS would invoke as Lambdas run here with the same event shapes, and the
 * control-plane stand-in's state (certificates, things, policies) is the registry it consults. See
 * docs/aws-fleet-provisioning.md ("The data-plane stand-in").
 *
 * - CONNECT: the client certificate from the TLS handshake (any issuer is accepted at TLS, as AWS IoT does) goes to the
 *   pre-authentication handler when one is configured (`isAuthenticated: false` refuses with CONNACK 5, not
 *   authorized), then to the control plane: ACTIVE certificates connect; an unknown certificate under a registered CA
 *   with auto-registration is registered PENDING_ACTIVATION and its JITR event published (the IoT stand-in's
 *   `onEvent`/`events`), and the connection refused, as AWS drops it.
 * - `$aws/certificates/create-from-csr/json`: the certificate provider signs the CSR (principalId = the connection's
 *   certificate id, clientId = its MQTT client id); the certificate is registered PENDING_ACTIVATION and answered on
 *   `…/accepted` with a one-hour ownership token; any failure of the provider is answered on `…/rejected`.
 * - `$aws/provisioning-templates/<name>/provision/json`: the template's thing, certificate status and policies are
 *   applied through the control-plane API (the real SDK against the IoT stand-in), answered on `…/accepted`
 *   `{deviceConfiguration, thingName}` or `…/rejected`.
 * Other topics are a plain broker; messages are kept in `messages`. IoT policies are not evaluated.
 */
export class IotDataStandIn {
  readonly connections: IotDataConnection[] = [];
  readonly messages: IotDataMessage[] = [];
  readonly serverName: string;
  private broker?: Aedes;
  private server?: tls.Server;
  private serverTls?: { certPem: string; keyPem: string };
  private readonly sessions = new WeakMap<Client, Session>();
  private readonly tokens = new Map<string, { certificateId: string; certificatePem: string; principal: string; until: number }>();
  private readonly control: IoTClient;

  constructor(private readonly options: IotDataStandInOptions) {
    this.serverName = options.serverName ?? 'iot.standin.local';
    this.control = new IoTClient({ region: options.iot.region, endpoint: options.iot.endpoint, maxAttempts: 5 });
  }

  /** Swap the handlers (or templates) while running, e.g. to point them elsewhere. */
  configure(changes: Partial<Pick<IotDataStandInOptions, 'certificateProvider' | 'clientCertificateCheck' | 'templates'>>): void {
    Object.assign(this.options, changes);
  }

  get port(): number {
    return (this.server!.address() as AddressInfo).port;
  }

  /** `mqtts://127.0.0.1:<port>`; connect with `servername` = `serverName` (SNI, which AWS requires for custom domains). */
  get url(): string {
    return `mqtts://127.0.0.1:${this.port}`;
  }

  /** What devices trust for the listener (the self-signed certificate unless one was given). */
  get serverCertificatePem(): string {
    return this.serverTls!.certPem;
  }

  async start(port = 0): Promise<this> {
    this.serverTls = this.options.serverTls ?? (await selfSignedServerCertificate(this.serverName));
    this.broker = await Aedes.createBroker({
      authenticate: (client, _username, _password, done) => {
        this.authenticate(client).then(
          (refusal) => {
            if (refusal === null) return done(null, true);
            const error = new Error(refusal) as AuthenticateError;
            error.returnCode = 5;
            done(error, false);
          },
          (err: Error) => {
            const error = new Error(`internal error: ${err.message}`) as AuthenticateError;
            error.returnCode = 3;
            done(error, false);
          },
        );
      },
      authorizePublish: (client, packet, callback) => {
        if (!client) return callback(null);
        if (packet.topic.startsWith('$aws/') && packet.topic !== CREATE_FROM_CSR && !REGISTER_THING.test(packet.topic)) {
          return callback(new Error(`publishing to ${packet.topic} is not allowed`));
        }
        callback(null);
      },
    });
    this.broker.on('publish', (packet, client) => {
      if (!client) return;
      void this.onPublish(client, packet.topic, Buffer.from(packet.payload as Buffer));
    });
    this.server = tls.createServer({ cert: this.serverTls.certPem, key: this.serverTls.keyPem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' }, (socket) =>
      this.broker!.handle(socket),
    );
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.broker ? this.broker.close(() => resolve()) : resolve()));
    if (this.server) await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.control.destroy();
  }

  /** Null when the connection may go on, else why not. */
  private async authenticate(client: Client): Promise<string | null> {
    const socket = client.conn as tls.TLSSocket;
    const chain = peerChain(socket);
    const record = (accepted: boolean, reason: string | null, certificateId: string | null, preAuthMs: number | null) => {
      this.connections.push({ clientId: client.id, certificateId, accepted, reason, at: Date.now(), preAuthMs });
      return reason;
    };
    if (chain.length === 0) return record(false, 'no client certificate', null, null);
    const leaf = new X509Certificate(chain[0]);
    const certificateId = leaf.fingerprint256.replace(/:/g, '').toLowerCase();
    let preAuthMs: number | null = null;
    const check = this.options.clientCertificateCheck;
    if (check) {
      const started = performance.now();
      const answer = await check({
        connectionMetadata: { id: randomUUID() },
        principalId: certificateId,
        serverName: socket.servername || '',
        clientCertificateChain: chain.map((der) => der.toString('base64')),
      }).catch(() => ({ isAuthenticated: false }));
      preAuthMs = performance.now() - started;
      if (answer?.isAuthenticated !== true) return record(false, 'pre-authentication', certificateId, preAuthMs);
    }
    const chainPem = chain.slice(1).map((der) => new X509Certificate(der).toString()).join('');
    const result = this.options.iot.connectDevice(leaf.toString(), chainPem);
    if (!result.connected) return record(false, result.reason, certificateId, preAuthMs);
    this.sessions.set(client, { certificateId, certificateArn: this.options.iot.certificateArn(certificateId) });
    return record(true, null, certificateId, preAuthMs);
  }

  private async onPublish(client: Client, topic: string, payload: Buffer): Promise<void> {
    const session = this.sessions.get(client);
    if (!session) return;
    if (topic === CREATE_FROM_CSR) return this.answer(client, topic, await this.createCertificateFromCsr(client, session, payload));
    const template = REGISTER_THING.exec(topic);
    if (template) return this.answer(client, topic, await this.registerThing(session, template[1], payload));
    this.messages.push({ clientId: client.id, certificateId: session.certificateId, topic, payload: payload.toString('utf8') });
  }

  /** The answer goes to the requesting connection only (many devices share the reply topics). */
  private answer(client: Client, topic: string, outcome: { accepted: boolean; body: unknown }): Promise<void> {
    return new Promise((resolve) =>
      client.publish({ cmd: 'publish', topic: `${topic}/${outcome.accepted ? 'accepted' : 'rejected'}`, payload: Buffer.from(JSON.stringify(outcome.body)), qos: 0, retain: false, dup: false }, () => resolve()),
    );
  }

  private async createCertificateFromCsr(client: Client, session: Session, payload: Buffer): Promise<{ accepted: boolean; body: unknown }> {
    const request = parseJson(payload);
    const csr = request?.certificateSigningRequest;
    if (typeof csr !== 'string' || !csr.includes('CERTIFICATE REQUEST')) return rejected(400, 'InvalidPayload', 'certificateSigningRequest must be a PEM CSR');
    const provider = this.options.certificateProvider;
    if (!provider) return rejected(500, 'InternalError', 'the stand-in has no certificate provider (AWS would sign with its own CA)');
    let certificatePem: string;
    try {
      ({ certificatePem } = await provider({ certificateSigningRequest: csr, principalId: session.certificateId, clientId: client.id }));
    } catch (err) {
      // AWS IoT turns a failed invocation into a rejection; the stand-in passes the handler's message on for tests.
      return rejected(400, 'InvalidRequest', `the certificate provider failed: ${(err as Error).message}`);
    }
    let certificateId: string;
    try {
      certificateId = this.options.iot.takeInProvidedCertificate(certificatePem).certificateId;
    } catch (err) {
      return rejected(400, 'InvalidRequest', `the certificate provider returned no usable certificate: ${(err as Error).message}`);
    }
    const certificateOwnershipToken = randomBytes(48).toString('base64url');
    this.tokens.set(certificateOwnershipToken, { certificateId, certificatePem, principal: session.certificateId, until: Date.now() + OWNERSHIP_TOKEN_LIFETIME_MS });
    return { accepted: true, body: { certificateId, certificatePem, certificateOwnershipToken } };
  }

  private async registerThing(session: Session, templateName: string, payload: Buffer): Promise<{ accepted: boolean; body: unknown }> {
    const request = parseJson(payload);
    const token = typeof request?.certificateOwnershipToken === 'string' ? this.tokens.get(request.certificateOwnershipToken) : undefined;
    if (!token || token.until < Date.now() || token.principal !== session.certificateId) return rejected(400, 'InvalidCertificateOwnershipToken', 'the certificate ownership token is unknown or expired');
    const templateBody = this.options.templates?.[templateName];
    if (!templateBody) return rejected(404, 'ResourceNotFound', `no provisioning template named ${templateName}`);
    const parameters = request?.parameters && typeof request.parameters === 'object' ? (request.parameters as Record<string, string>) : {};
    try {
      const plan = planRegisterThing(templateBody, parameters, token.certificateId, token.certificatePem);
      const certificateArn = this.options.iot.certificateArn(token.certificateId);
      if (plan.thing) {
        const { thingName, attributes, thingTypeName } = plan.thing;
        await this.control
          .send(new CreateThingCommand({ thingName, ...(thingTypeName ? { thingTypeName } : {}), ...(attributes ? { attributePayload: { attributes } } : {}) }))
          .catch((err: Error) => {
            if (err.name !== 'ResourceAlreadyExistsException') throw err;
          });
        for (const thingGroupName of plan.thing.thingGroups ?? []) await this.control.send(new AddThingToThingGroupCommand({ thingName, thingGroupName }));
        await this.control.send(new AttachThingPrincipalCommand({ thingName, principal: certificateArn }));
      }
      for (const policyName of plan.policyNames) await this.control.send(new AttachPolicyCommand({ policyName, target: certificateArn }));
      if (plan.certificateStatus) await this.control.send(new UpdateCertificateCommand({ certificateId: token.certificateId, newStatus: plan.certificateStatus as 'ACTIVE' }));
      this.tokens.delete(request!.certificateOwnershipToken as string);
      return { accepted: true, body: { deviceConfiguration: plan.deviceConfiguration, thingName: plan.thing?.thingName ?? '' } };
    } catch (err) {
      if (err instanceof TemplateError || err instanceof SyntaxError) return rejected(400, 'InvalidRequest', err.message);
      return rejected(400, (err as Error).name || 'InternalError', (err as Error).message);
    }
  }
}

function rejected(statusCode: number, errorCode: string, errorMessage: string): { accepted: false; body: { statusCode: number; errorCode: string; errorMessage: string } } {
  return { accepted: false, body: { statusCode, errorCode, errorMessage } };
}

function parseJson(payload: Buffer): Record<string, unknown> | null {
  try {
    const value = JSON.parse(payload.toString('utf8')) as unknown;
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The client's certificate chain as it sent it, leaf first (DER). */
function peerChain(socket: tls.TLSSocket): Buffer[] {
  if (typeof socket.getPeerCertificate !== 'function') return [];
  const chain: Buffer[] = [];
  let current = socket.getPeerCertificate(true) as tls.DetailedPeerCertificate | undefined;
  const seen = new Set<string>();
  while (current && current.raw && !seen.has(current.fingerprint256)) {
    seen.add(current.fingerprint256);
    chain.push(current.raw);
    current = current.issuerCertificate;
  }
  return chain;
}
