import { randomUUID } from 'node:crypto';
import { alreadyExists, invalid, IotAccount, IotRequest, IotRoute, notFound } from './iot-api';
import { attributeMap, sameAttributes, thingNameParam, thingTypeNameParam } from './params';
import { ThingGroupMembership } from './thing-group-membership';
import { ThingTypes } from './thing-types';

export interface IotThingView {
  thingName: string;
  thingArn: string;
  thingId: string;
  /** The thing's type, when it was created with one. */
  thingTypeName?: string;
  attributes: Record<string, string>;
  /** Names of the thing groups the thing was added to, in order. */
  thingGroups: string[];
  version: number;
}

export interface ThingRecord {
  name: string;
  arn: string;
  id: string;
  thingTypeName?: string;
  attributes: Record<string, string>;
  version: number;
}

/** Things: CreateThing (idempotent for the same type and attributes), DescribeThing. */
export class Things {
  readonly records = new Map<string, ThingRecord>();

  constructor(
    private readonly account: IotAccount,
    private readonly types: ThingTypes,
    private readonly membership: ThingGroupMembership,
  ) {}

  routes(): IotRoute[] {
    return [
      { method: 'POST', path: /^\/things\/([^/]+)$/, operation: 'CreateThing', handle: (req) => this.create(req) },
      { method: 'GET', path: /^\/things\/([^/]+)$/, operation: 'DescribeThing', handle: (req) => this.describe(req) },
    ];
  }

  /** The thing of this name; ResourceNotFoundException when there is none. */
  record(rawName: string): ThingRecord {
    const name = thingNameParam(rawName);
    const record = this.records.get(name);
    if (!record) throw notFound(`Thing ${name} cannot be found.`);
    return record;
  }

  view(thingName: string): IotThingView | undefined {
    const record = this.records.get(thingName);
    return record && this.thingView(record);
  }

  list(): IotThingView[] {
    return [...this.records.values()].map((record) => this.thingView(record));
  }

  private create(req: IotRequest): unknown {
    const name = thingNameParam(req.params[0]);
    const { body } = req;
    let thingTypeName: string | undefined;
    if (body.thingTypeName !== undefined) {
      thingTypeName = thingTypeNameParam(body.thingTypeName);
      const type = this.types.records.get(thingTypeName);
      if (!type) throw notFound(`Thing type ${thingTypeName} does not exist`);
      if (type.deprecated) throw invalid(`Thing type ${thingTypeName} is deprecated: new things cannot be associated with it`);
    }
    if (body.billingGroupName !== undefined) throw notFound(`The billing group ${String(body.billingGroupName)} does not exist`);
    const attributes = attributeMap(body.attributePayload, 'attributePayload');
    // Thing limits: 3 attributes without a thing type, 50 with one.
    const maxAttributes = thingTypeName ? 50 : 3;
    if (Object.keys(attributes).length > maxAttributes) {
      throw invalid(`A thing ${thingTypeName ? 'with' : 'without'} a thing type can have at most ${maxAttributes} attributes`);
    }
    const existing = this.records.get(name);
    if (existing) {
      if (existing.thingTypeName === thingTypeName && sameAttributes(existing.attributes, attributes)) {
        return { thingName: existing.name, thingArn: existing.arn, thingId: existing.id };
      }
      throw alreadyExists(`Thing ${name} already exists in account with different attributes or thing type`, existing.id, existing.arn);
    }
    const record: ThingRecord = { name, arn: this.account.arn(`thing/${name}`), id: randomUUID(), thingTypeName, attributes, version: 1 };
    this.records.set(name, record);
    return { thingName: record.name, thingArn: record.arn, thingId: record.id };
  }

  private describe(req: IotRequest): unknown {
    const record = this.record(req.params[0]);
    return {
      defaultClientId: record.name,
      thingName: record.name,
      thingId: record.id,
      thingArn: record.arn,
      thingTypeName: record.thingTypeName,
      attributes: record.attributes,
      version: record.version,
    };
  }

  private thingView(record: ThingRecord): IotThingView {
    return {
      thingName: record.name,
      thingArn: record.arn,
      thingId: record.id,
      thingTypeName: record.thingTypeName,
      attributes: { ...record.attributes },
      thingGroups: this.membership.groupsOf(record.name),
      version: record.version,
    };
  }
}
