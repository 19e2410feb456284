import { AwsError } from '../http/aws-error';
import { invalid, IotAccount, IotRequest, IotRoute, notFound } from './iot-api';
import { booleanQuery, jobIdParam, optionalString, page, pageSizeQuery } from './params';
import { ThingGroups } from './thing-groups';
import { Things } from './things';

export type IotJobStatus = 'IN_PROGRESS' | 'CANCELED' | 'COMPLETED' | 'DELETION_IN_PROGRESS' | 'SCHEDULED';

const JOB_STATUSES: IotJobStatus[] = ['IN_PROGRESS', 'CANCELED', 'COMPLETED', 'DELETION_IN_PROGRESS', 'SCHEDULED'];
/** AWS IoT Jobs limits: a job document of at most 32 KB, at most 100 targets per job. */
const MAX_JOB_DOCUMENT_BYTES = 32_768;
const MAX_JOB_TARGETS = 100;

export interface IotJobView {
  jobId: string;
  jobArn: string;
  /** Thing and thing group ARNs, as given. */
  targets: string[];
  /** The job document, parsed. */
  document: unknown;
  description?: string;
  targetSelection: 'SNAPSHOT' | 'CONTINUOUS';
  status: IotJobStatus;
  createdAt: Date;
}

interface JobRecord {
  id: string;
  arn: string;
  targets: string[];
  document: string;
  description?: string;
  targetSelection: 'SNAPSHOT' | 'CONTINUOUS';
  status: IotJobStatus;
  created: number;
  lastUpdated: number;
  completed?: number;
}

/**
 * Jobs with their targets (things and thing groups that exist) and inline document: CreateJob, DescribeJob,
 * GetJobDocument, ListJobs. No job executions are played: a test moves a job along with setStatus.
 */
export class Jobs {
  private readonly records = new Map<string, JobRecord>();

  constructor(
    private readonly account: IotAccount,
    private readonly things: Things,
    private readonly groups: ThingGroups,
  ) {}

  routes(): IotRoute[] {
    return [
      { method: 'GET', path: /^\/jobs$/, operation: 'ListJobs', handle: (req) => this.list(req) },
      { method: 'PUT', path: /^\/jobs\/([^/]+)$/, operation: 'CreateJob', handle: (req) => this.create(req) },
      { method: 'GET', path: /^\/jobs\/([^/]+)$/, operation: 'DescribeJob', handle: (req) => this.describe(req) },
      { method: 'GET', path: /^\/jobs\/([^/]+)\/job-document$/, operation: 'GetJobDocument', handle: (req) => this.document(req) },
    ];
  }

  /** Jobs created so far, oldest first, with their targets and parsed documents. */
  views(): IotJobView[] {
    return [...this.records.values()].map(jobView);
  }

  view(jobId: string): IotJobView | undefined {
    const record = this.records.get(jobId);
    return record && jobView(record);
  }

  /** Test hook: move a job to another status (an operator cancelling or deleting it, or the job completing). */
  setStatus(jobId: string, status: IotJobStatus): void {
    if (!JOB_STATUSES.includes(status)) throw new Error(`unknown job status ${status}`);
    const record = this.records.get(jobId);
    if (!record) throw new Error(`no job ${jobId}`);
    record.status = status;
    record.lastUpdated = Date.now();
    record.completed = status === 'COMPLETED' || status === 'CANCELED' ? record.lastUpdated : undefined;
  }

  private record(rawId: string): JobRecord {
    const id = jobIdParam(rawId);
    const record = this.records.get(id);
    if (!record) throw notFound(`Job ${id} cannot be found.`);
    return record;
  }

  /** A thing or thing group ARN of this account and region naming one that exists. */
  private target(target: unknown): string {
    if (typeof target !== 'string' || target.length === 0 || target.length > 2048) throw invalid('each target must be an ARN of at most 2048 characters');
    const match = /^arn:aws:iot:([a-z0-9-]+):(\d{12}):(thing|thinggroup)\/([a-zA-Z0-9:_-]{1,128})$/.exec(target);
    if (!match) throw invalid(`target ${target} is not a thing or thing group ARN`);
    if (match[1] !== this.account.region || match[2] !== this.account.account) throw invalid(`target ${target} is not in this account and region`);
    const known = match[3] === 'thing' ? this.things.records.get(match[4]) : this.groups.records.get(match[4]);
    if (!known) throw notFound(`${match[3] === 'thing' ? 'Thing' : 'Thing group'} ${match[4]} cannot be found.`);
    return target;
  }

  private create(req: IotRequest): unknown {
    const id = jobIdParam(req.params[0]);
    const { body } = req;
    const targets = body.targets;
    if (!Array.isArray(targets) || targets.length === 0) throw invalid('targets is required: at least one thing or thing group ARN');
    if (targets.length > MAX_JOB_TARGETS) throw invalid(`A job can have at most ${MAX_JOB_TARGETS} targets, not ${targets.length}`);
    const checkedTargets = targets.map((target) => this.target(target));

    if (body.documentSource !== undefined || body.jobTemplateArn !== undefined || body.documentParameters !== undefined) {
      throw invalid('the stand-in supports inline job documents only (document), not documentSource, jobTemplateArn or documentParameters');
    }
    const document = body.document;
    if (document === undefined) throw invalid('document or documentSource is required');
    if (typeof document !== 'string' || document.length === 0) throw invalid('document must be a non-empty string');
    if (Buffer.byteLength(document, 'utf8') > MAX_JOB_DOCUMENT_BYTES) {
      throw invalid(`The job document is larger than ${MAX_JOB_DOCUMENT_BYTES} bytes (${Buffer.byteLength(document, 'utf8')})`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(document);
    } catch {
      throw invalid('The job document is not valid JSON');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid('The job document must be a JSON object');

    const description = optionalString(body.description, 'description', 2028);
    if (description !== undefined && (description.length === 0 || /\p{C}/u.test(description))) {
      throw invalid('description must be 1 to 2028 characters without control characters');
    }
    const targetSelection = body.targetSelection ?? 'SNAPSHOT';
    if (targetSelection !== 'SNAPSHOT' && targetSelection !== 'CONTINUOUS') throw invalid(`targetSelection must be SNAPSHOT or CONTINUOUS, not ${String(targetSelection)}`);
    if (body.tags !== undefined && !Array.isArray(body.tags)) throw invalid('tags must be a list');

    // CreateJob is not idempotent: the same id again, whatever the rest, is refused (no resourceArn is relied on).
    if (this.records.has(id)) throw new AwsError('ResourceAlreadyExistsException', `Job ${id} already exists.`, 409);
    const now = Date.now();
    const record: JobRecord = {
      id,
      arn: this.account.arn(`job/${id}`),
      targets: checkedTargets,
      document,
      description,
      targetSelection,
      status: 'IN_PROGRESS',
      created: now,
      lastUpdated: now,
    };
    this.records.set(id, record);
    return { jobArn: record.arn, jobId: record.id, description: record.description };
  }

  private describe(req: IotRequest): unknown {
    const record = this.record(req.params[0]);
    booleanQuery(req.query, 'beforeSubstitution');
    return {
      job: {
        jobArn: record.arn,
        jobId: record.id,
        targetSelection: record.targetSelection,
        status: record.status,
        forceCanceled: false,
        targets: record.targets,
        description: record.description,
        createdAt: record.created / 1000,
        lastUpdatedAt: record.lastUpdated / 1000,
        completedAt: record.completed === undefined ? undefined : record.completed / 1000,
        isConcurrent: false,
      },
    };
  }

  private document(req: IotRequest): unknown {
    const record = this.record(req.params[0]);
    booleanQuery(req.query, 'beforeSubstitution');
    return { document: record.document };
  }

  /** Newest first; filtered by status, targetSelection and a targeted thing group (by name). */
  private list(req: IotRequest): unknown {
    const { query } = req;
    const status = query.get('status');
    if (status !== null && !JOB_STATUSES.includes(status as IotJobStatus)) throw invalid(`status must be one of ${JOB_STATUSES.join(', ')}`);
    const targetSelection = query.get('targetSelection');
    if (targetSelection !== null && targetSelection !== 'SNAPSHOT' && targetSelection !== 'CONTINUOUS') throw invalid('targetSelection must be SNAPSHOT or CONTINUOUS');
    const groupName = query.get('thingGroupName');
    let groupArn: string | undefined;
    if (groupName !== null) groupArn = this.groups.record(groupName).arn;
    const groupId = query.get('thingGroupId');
    if (groupId !== null) {
      const group = [...this.groups.records.values()].find((g) => g.id === groupId);
      if (!group) throw notFound(`Thing group ${groupId} cannot be found.`);
      if (groupArn !== undefined && groupArn !== group.arn) throw invalid('thingGroupName and thingGroupId name different groups');
      groupArn = group.arn;
    }
    const jobs = [...this.records.values()]
      .filter((job) => (status === null || job.status === status) && (targetSelection === null || job.targetSelection === targetSelection))
      .filter((job) => groupArn === undefined || job.targets.includes(groupArn))
      .sort((a, b) => b.created - a.created)
      .map((job) => ({
        jobArn: job.arn,
        jobId: job.id,
        targetSelection: job.targetSelection,
        status: job.status,
        createdAt: job.created / 1000,
        lastUpdatedAt: job.lastUpdated / 1000,
        completedAt: job.completed === undefined ? undefined : job.completed / 1000,
        isConcurrent: false,
      }));
    const { items, next } = page(jobs, pageSizeQuery(query, 'maxResults'), query.get('nextToken'));
    return { jobs: items, nextToken: next };
  }
}

function jobView(record: JobRecord): IotJobView {
  return {
    jobId: record.id,
    jobArn: record.arn,
    targets: [...record.targets],
    document: JSON.parse(record.document) as unknown,
    description: record.description,
    targetSelection: record.targetSelection,
    status: record.status,
    createdAt: new Date(record.created),
  };
}
