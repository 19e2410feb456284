import { randomUUID } from 'node:crypto';
import { AwsError } from '../http/aws-error';
import { alreadyExists, invalid, IotAccount, IotRequest, IotRoute, notFound } from './iot-api';
import { booleanQuery, policyNameParam, requiredString } from './params';

/** AWS IoT policy limits: a document of at most 2048 characters not counting whitespace, at most five versions. */
const MAX_POLICY_DOCUMENT_CHARACTERS = 2048;
const MAX_POLICY_VERSIONS = 5;

export interface IotPolicyVersionView {
  versionId: string;
  isDefaultVersion: boolean;
  /** The document, parsed. */
  document: unknown;
  /** The document exactly as sent. */
  documentText: string;
  createdAt: Date;
}

export interface IotPolicyView {
  policyName: string;
  policyArn: string;
  defaultVersionId: string;
  /** The default version's document, parsed (what devices get). */
  document: unknown;
  documentText: string;
  /** Every kept version, oldest first. */
  versions: IotPolicyVersionView[];
  createdAt: Date;
  lastModifiedAt: Date;
}

interface PolicyVersionRecord {
  id: string;
  document: string;
  created: number;
  generationId: string;
}

export interface PolicyRecord {
  name: string;
  arn: string;
  /** Kept versions by id, in creation order. */
  versions: Map<string, PolicyVersionRecord>;
  defaultVersionId: string;
  /** Version ids are never reused, even after a version is deleted. */
  nextVersionId: number;
  created: number;
  lastModified: number;
  generationId: string;
}

/**
 * Policies with versions like AWS IoT keeps them: CreatePolicy makes version 1, the default; CreatePolicyVersion adds
 * one (at most five kept, ids never reused); SetDefaultPolicyVersion; DeletePolicyVersion refuses the default
 * version; GetPolicy answers the default version's document.
 */
export class Policies {
  readonly records = new Map<string, PolicyRecord>();

  constructor(private readonly account: IotAccount) {}

  routes(): IotRoute[] {
    return [
      { method: 'POST', path: /^\/policies\/([^/]+)$/, operation: 'CreatePolicy', handle: (req) => this.create(req) },
      { method: 'GET', path: /^\/policies\/([^/]+)$/, operation: 'GetPolicy', handle: (req) => this.get(req) },
      { method: 'POST', path: /^\/policies\/([^/]+)\/version$/, operation: 'CreatePolicyVersion', handle: (req) => this.createVersion(req) },
      { method: 'GET', path: /^\/policies\/([^/]+)\/version$/, operation: 'ListPolicyVersions', handle: (req) => this.listVersions(req) },
      { method: 'GET', path: /^\/policies\/([^/]+)\/version\/([^/]+)$/, operation: 'GetPolicyVersion', handle: (req) => this.getVersion(req) },
      { method: 'DELETE', path: /^\/policies\/([^/]+)\/version\/([^/]+)$/, operation: 'DeletePolicyVersion', handle: (req) => this.deleteVersion(req) },
      { method: 'PATCH', path: /^\/policies\/([^/]+)\/version\/([^/]+)$/, operation: 'SetDefaultPolicyVersion', handle: (req) => this.setDefaultVersion(req) },
    ];
  }

  /** The policy of this name; ResourceNotFoundException when there is none. */
  record(rawName: string): PolicyRecord {
    const name = policyNameParam(rawName);
    const record = this.records.get(name);
    if (!record) throw notFound(`Policy ${name} does not exist`);
    return record;
  }

  /** The default version's document of a policy, as sent. */
  document(policyName: string): string | undefined {
    const record = this.records.get(policyName);
    return record && defaultVersion(record).document;
  }

  view(policyName: string): IotPolicyView | undefined {
    const record = this.records.get(policyName);
    return record && policyView(record);
  }

  list(): IotPolicyView[] {
    return [...this.records.values()].map(policyView);
  }

  private create(req: IotRequest): unknown {
    const name = policyNameParam(req.params[0]);
    const document = policyDocumentParam(req.body);
    if (req.body.tags !== undefined && !Array.isArray(req.body.tags)) throw invalid('tags must be a list');
    const arn = this.account.arn(`policy/${name}`);
    if (this.records.has(name)) throw alreadyExists(`Policy ${name} already exists`, name, arn);
    const now = Date.now();
    const version: PolicyVersionRecord = { id: '1', document, created: now, generationId: randomUUID() };
    const record: PolicyRecord = {
      name,
      arn,
      versions: new Map([[version.id, version]]),
      defaultVersionId: version.id,
      nextVersionId: 2,
      created: now,
      lastModified: now,
      generationId: randomUUID(),
    };
    this.records.set(name, record);
    return { policyName: name, policyArn: arn, policyDocument: document, policyVersionId: version.id };
  }

  /** The default version's document and id (what AWS IoT evaluates for the certificates the policy is attached to). */
  private get(req: IotRequest): unknown {
    const record = this.record(req.params[0]);
    const version = defaultVersion(record);
    return {
      policyName: record.name,
      policyArn: record.arn,
      policyDocument: version.document,
      defaultVersionId: record.defaultVersionId,
      creationDate: record.created / 1000,
      lastModifiedDate: record.lastModified / 1000,
      generationId: record.generationId,
    };
  }

  private versionRecord(record: PolicyRecord, rawId: string): PolicyVersionRecord {
    if (!/^[0-9]+$/.test(rawId)) throw invalid(`policyVersionId ${rawId} must be digits`);
    const version = record.versions.get(String(Number(rawId)));
    if (!version) throw notFound(`Policy ${record.name} has no version ${rawId}`);
    return version;
  }

  /** Refuses a sixth version: AWS IoT keeps at most five, and the caller must delete one (not the default) first. */
  private createVersion(req: IotRequest): unknown {
    const record = this.record(req.params[0]);
    const document = policyDocumentParam(req.body);
    const setAsDefault = booleanQuery(req.query, 'setAsDefault') ?? false;
    if (record.versions.size >= MAX_POLICY_VERSIONS) {
      throw new AwsError(
        'VersionsLimitExceededException',
        `The policy ${record.name} already has the maximum number of versions (${MAX_POLICY_VERSIONS}); delete one with DeletePolicyVersion first`,
        409,
      );
    }
    const now = Date.now();
    const version: PolicyVersionRecord = { id: String(record.nextVersionId++), document, created: now, generationId: randomUUID() };
    record.versions.set(version.id, version);
    if (setAsDefault) record.defaultVersionId = version.id;
    record.lastModified = now;
    record.generationId = randomUUID();
    return { policyArn: record.arn, policyDocument: document, policyVersionId: version.id, isDefaultVersion: setAsDefault };
  }

  /** Every kept version, oldest first, with which one is the default. */
  private listVersions(req: IotRequest): unknown {
    const record = this.record(req.params[0]);
    return {
      policyVersions: [...record.versions.values()].map((version) => ({
        versionId: version.id,
        isDefaultVersion: version.id === record.defaultVersionId,
        createDate: version.created / 1000,
      })),
    };
  }

  private getVersion(req: IotRequest): unknown {
    const record = this.record(req.params[0]);
    const version = this.versionRecord(record, req.params[1]);
    return {
      policyArn: record.arn,
      policyName: record.name,
      policyDocument: version.document,
      policyVersionId: version.id,
      isDefaultVersion: version.id === record.defaultVersionId,
      creationDate: version.created / 1000,
      lastModifiedDate: version.created / 1000,
      generationId: version.generationId,
    };
  }

  /** The default version cannot be deleted this way (AWS: DeletePolicy does that): DeleteConflictException. */
  private deleteVersion(req: IotRequest): unknown {
    const record = this.record(req.params[0]);
    const version = this.versionRecord(record, req.params[1]);
    if (version.id === record.defaultVersionId) {
      throw new AwsError('DeleteConflictException', `Version ${version.id} is the default version of policy ${record.name} and cannot be deleted`, 409);
    }
    record.versions.delete(version.id);
    return {};
  }

  private setDefaultVersion(req: IotRequest): unknown {
    const record = this.record(req.params[0]);
    const version = this.versionRecord(record, req.params[1]);
    if (record.defaultVersionId !== version.id) {
      record.defaultVersionId = version.id;
      record.lastModified = Date.now();
      record.generationId = randomUUID();
    }
    return {};
  }
}

function defaultVersion(record: PolicyRecord): PolicyVersionRecord {
  return record.versions.get(record.defaultVersionId)!;
}

/**
 * A policy document as AWS IoT checks it on CreatePolicy and CreatePolicyVersion: JSON, an object with a Statement,
 * at most 2048 characters not counting whitespace (MalformedPolicyException otherwise). The grammar of statements
 * is not checked further.
 */
function policyDocumentParam(body: Record<string, unknown>): string {
  const document = requiredString(body, 'policyDocument');
  let parsed: unknown;
  try {
    parsed = JSON.parse(document);
  } catch {
    throw new AwsError('MalformedPolicyException', 'The policy document is not valid JSON', 400);
  }
  if (typeof parsed !== 'object' || parsed === null || !('Statement' in parsed)) {
    throw new AwsError('MalformedPolicyException', 'The policy document has no Statement', 400);
  }
  const characters = document.replace(/\s/g, '').length;
  if (characters > MAX_POLICY_DOCUMENT_CHARACTERS) {
    throw new AwsError('MalformedPolicyException', `The policy document has ${characters} characters excluding whitespace; the maximum is ${MAX_POLICY_DOCUMENT_CHARACTERS}`, 400);
  }
  return document;
}

function policyView(record: PolicyRecord): IotPolicyView {
  const versionView = (version: PolicyVersionRecord): IotPolicyVersionView => ({
    versionId: version.id,
    isDefaultVersion: version.id === record.defaultVersionId,
    document: JSON.parse(version.document) as unknown,
    documentText: version.document,
    createdAt: new Date(version.created),
  });
  const current = versionView(defaultVersion(record));
  return {
    policyName: record.name,
    policyArn: record.arn,
    defaultVersionId: record.defaultVersionId,
    document: current.document,
    documentText: current.documentText,
    versions: [...record.versions.values()].map(versionView),
    createdAt: new Date(record.created),
    lastModifiedAt: new Date(record.lastModified),
  };
}
