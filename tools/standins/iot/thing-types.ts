import { randomUUID } from 'node:crypto';
import { alreadyExists, invalid, IotAccount, IotRequest, IotRoute, notFound } from './iot-api';
import { optionalObject, optionalString, sameList, thingTypeNameParam } from './params';

export interface IotThingTypeView {
  thingTypeName: string;
  thingTypeArn: string;
  thingTypeId: string;
  description?: string;
  searchableAttributes: string[];
  deprecated: boolean;
  createdAt: Date;
}

export interface ThingTypeRecord {
  name: string;
  arn: string;
  id: string;
  description?: string;
  searchableAttributes: string[];
  deprecated: boolean;
  deprecationDate?: number;
  created: number;
}

/** Thing types: CreateThingType, DescribeThingType, DeprecateThingType (a deprecated type takes no new things). */
export class ThingTypes {
  readonly records = new Map<string, ThingTypeRecord>();

  constructor(private readonly account: IotAccount) {}

  routes(): IotRoute[] {
    return [
      { method: 'POST', path: /^\/thing-types\/([^/]+)$/, operation: 'CreateThingType', handle: (req) => this.createOperation(req) },
      { method: 'GET', path: /^\/thing-types\/([^/]+)$/, operation: 'DescribeThingType', handle: (req) => this.describe(req) },
      { method: 'POST', path: /^\/thing-types\/([^/]+)\/deprecate$/, operation: 'DeprecateThingType', handle: (req) => this.deprecateOperation(req) },
    ];
  }

  view(thingTypeName: string): IotThingTypeView | undefined {
    const record = this.records.get(thingTypeName);
    return record && thingTypeView(record);
  }

  /** Test hook: a thing type made in the console, say (CreateThingType does the same over the API). */
  create(thingTypeName: string, options: { description?: string; searchableAttributes?: string[] } = {}): IotThingTypeView {
    this.put(thingTypeNameParam(thingTypeName), options.description, options.searchableAttributes ?? []);
    return this.view(thingTypeName)!;
  }

  /** Test hook: deprecate a thing type (or undo it): CreateThing then refuses it for new things. */
  deprecate(thingTypeName: string, deprecated = true): void {
    const record = this.records.get(thingTypeName);
    if (!record) throw new Error(`no thing type ${thingTypeName}`);
    record.deprecated = deprecated;
    record.deprecationDate = deprecated ? Date.now() : undefined;
  }

  /** Creates the type, or returns it when it exists with the same configuration (as AWS does). */
  private put(name: string, description: string | undefined, searchableAttributes: string[]): ThingTypeRecord {
    const arn = this.account.arn(`thingtype/${name}`);
    const existing = this.records.get(name);
    if (existing) {
      if (existing.description === description && sameList(existing.searchableAttributes, searchableAttributes)) return existing;
      throw alreadyExists(`Thing type ${name} already exists with a different configuration`, existing.id, existing.arn);
    }
    const record: ThingTypeRecord = { name, arn, id: randomUUID(), description, searchableAttributes: [...searchableAttributes], deprecated: false, created: Date.now() };
    this.records.set(name, record);
    return record;
  }

  private record(rawName: string): ThingTypeRecord {
    const name = thingTypeNameParam(rawName);
    const record = this.records.get(name);
    if (!record) throw notFound(`Thing type ${name} does not exist`);
    return record;
  }

  private createOperation(req: IotRequest): unknown {
    const name = thingTypeNameParam(req.params[0]);
    const properties = optionalObject(req.body.thingTypeProperties, 'thingTypeProperties');
    const description = optionalString(properties.thingTypeDescription, 'thingTypeProperties.thingTypeDescription', 2028);
    const searchable = properties.searchableAttributes ?? [];
    if (!Array.isArray(searchable) || searchable.some((a) => typeof a !== 'string' || !/^[a-zA-Z0-9_.,@/:#-]{1,128}$/.test(a))) {
      throw invalid('thingTypeProperties.searchableAttributes must be a list of attribute names');
    }
    if (searchable.length > 3) throw invalid('A thing type can have at most 3 searchable attributes');
    if (req.body.tags !== undefined && !Array.isArray(req.body.tags)) throw invalid('tags must be a list');
    const record = this.put(name, description, searchable as string[]);
    return { thingTypeName: record.name, thingTypeArn: record.arn, thingTypeId: record.id };
  }

  private describe(req: IotRequest): unknown {
    const record = this.record(req.params[0]);
    return {
      thingTypeName: record.name,
      thingTypeId: record.id,
      thingTypeArn: record.arn,
      thingTypeProperties: { thingTypeDescription: record.description, searchableAttributes: record.searchableAttributes },
      thingTypeMetadata: {
        deprecated: record.deprecated,
        deprecationDate: record.deprecationDate === undefined ? undefined : record.deprecationDate / 1000,
        creationDate: record.created / 1000,
      },
    };
  }

  private deprecateOperation(req: IotRequest): unknown {
    const record = this.record(req.params[0]);
    const undo = req.body.undoDeprecate;
    if (undo !== undefined && typeof undo !== 'boolean') throw invalid('undoDeprecate must be a boolean');
    this.deprecate(record.name, !undo);
    return {};
  }
}

function thingTypeView(record: ThingTypeRecord): IotThingTypeView {
  return {
    thingTypeName: record.name,
    thingTypeArn: record.arn,
    thingTypeId: record.id,
    description: record.description,
    searchableAttributes: [...record.searchableAttributes],
    deprecated: record.deprecated,
    createdAt: new Date(record.created),
  };
}
