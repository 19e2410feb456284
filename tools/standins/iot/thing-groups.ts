import { randomUUID } from 'node:crypto';
import { alreadyExists, invalid, IotAccount, IotRequest, IotRoute, notFound } from './iot-api';
import { attributeMap, optionalObject, optionalString, page, pageSizeQuery, sameAttributes, thingGroupNameParam } from './params';
import { ThingGroupMembership } from './thing-group-membership';
import { Things } from './things';

export interface IotThingGroupView {
  thingGroupName: string;
  thingGroupArn: string;
  thingGroupId: string;
  description?: string;
  attributes: Record<string, string>;
  parentGroupName?: string;
  /** Names of the things in the group, in the order they were added. */
  things: string[];
  version: number;
  createdAt: Date;
}

export interface ThingGroupRecord {
  name: string;
  arn: string;
  id: string;
  description?: string;
  attributes: Record<string, string>;
  parentGroupName?: string;
  version: number;
  created: number;
}

/**
 * Static thing groups (a hierarchy at most 7 levels deep) and their members: CreateThingGroup, DescribeThingGroup,
 * AddThingToThingGroup, ListThingGroupsForThing.
 */
export class ThingGroups {
  readonly records = new Map<string, ThingGroupRecord>();

  constructor(
    private readonly account: IotAccount,
    private readonly things: Things,
    private readonly membership: ThingGroupMembership,
  ) {}

  routes(): IotRoute[] {
    return [
      { method: 'GET', path: /^\/things\/([^/]+)\/thing-groups$/, operation: 'ListThingGroupsForThing', handle: (req) => this.listForThing(req) },
      // A fixed path under /thing-groups (not a group named addThingToThingGroup: that one is the PUT).
      { method: 'PUT', path: /^\/thing-groups\/addThingToThingGroup$/, operation: 'AddThingToThingGroup', handle: (req) => this.addThing(req) },
      { method: 'POST', path: /^\/thing-groups\/([^/]+)$/, operation: 'CreateThingGroup', handle: (req) => this.createOperation(req) },
      { method: 'GET', path: /^\/thing-groups\/([^/]+)$/, operation: 'DescribeThingGroup', handle: (req) => this.describe(req) },
    ];
  }

  /** The group of this name; ResourceNotFoundException when there is none. */
  record(rawName: string): ThingGroupRecord {
    const name = thingGroupNameParam(rawName);
    const record = this.records.get(name);
    if (!record) throw notFound(`Thing group ${name} does not exist`);
    return record;
  }

  view(thingGroupName: string): IotThingGroupView | undefined {
    const record = this.records.get(thingGroupName);
    return record && this.groupView(record);
  }

  /** Test hook: a (static) thing group made in the console, say (CreateThingGroup does the same over the API). */
  create(thingGroupName: string, options: { description?: string; attributes?: Record<string, string>; parentGroupName?: string } = {}): IotThingGroupView {
    this.put(thingGroupNameParam(thingGroupName), options.description, options.attributes ?? {}, options.parentGroupName);
    return this.view(thingGroupName)!;
  }

  /** Creates the group, or returns it when it exists with the same configuration (as AWS does). */
  private put(name: string, description: string | undefined, attributes: Record<string, string>, parentGroupName: string | undefined): ThingGroupRecord {
    if (parentGroupName !== undefined) {
      thingGroupNameParam(parentGroupName);
      if (!this.records.has(parentGroupName)) throw notFound(`Thing group ${parentGroupName} does not exist`);
      if (this.ancestorsOf(parentGroupName).length + 1 >= 7) throw invalid('A thing group hierarchy can be at most 7 levels deep');
    }
    if (Object.keys(attributes).length > 50) throw invalid('A thing group can have at most 50 attributes');
    const arn = this.account.arn(`thinggroup/${name}`);
    const existing = this.records.get(name);
    if (existing) {
      if (existing.description === description && existing.parentGroupName === parentGroupName && sameAttributes(existing.attributes, attributes)) return existing;
      throw alreadyExists(`Thing group ${name} already exists with a different configuration`, existing.id, existing.arn);
    }
    const record: ThingGroupRecord = { name, arn, id: randomUUID(), description, attributes: { ...attributes }, parentGroupName, version: 1, created: Date.now() };
    this.records.set(name, record);
    return record;
  }

  /** The group's ancestors, root first. */
  private ancestorsOf(groupName: string): ThingGroupRecord[] {
    const chain: ThingGroupRecord[] = [];
    for (let parent = this.records.get(groupName)?.parentGroupName; parent !== undefined; parent = this.records.get(parent)?.parentGroupName) {
      chain.unshift(this.records.get(parent)!);
    }
    return chain;
  }

  private createOperation(req: IotRequest): unknown {
    const name = thingGroupNameParam(req.params[0]);
    const parent = req.body.parentGroupName;
    if (parent !== undefined && typeof parent !== 'string') throw invalid('parentGroupName must be a string');
    const properties = optionalObject(req.body.thingGroupProperties, 'thingGroupProperties');
    const description = optionalString(properties.thingGroupDescription, 'thingGroupProperties.thingGroupDescription', 2028);
    const attributes = attributeMap(properties.attributePayload, 'thingGroupProperties.attributePayload');
    if (req.body.tags !== undefined && !Array.isArray(req.body.tags)) throw invalid('tags must be a list');
    const record = this.put(name, description, attributes, parent);
    return { thingGroupName: record.name, thingGroupArn: record.arn, thingGroupId: record.id };
  }

  private describe(req: IotRequest): unknown {
    const record = this.record(req.params[0]);
    return {
      thingGroupName: record.name,
      thingGroupId: record.id,
      thingGroupArn: record.arn,
      version: record.version,
      thingGroupProperties: { thingGroupDescription: record.description, attributePayload: { attributes: record.attributes } },
      thingGroupMetadata: {
        parentGroupName: record.parentGroupName,
        rootToParentThingGroups: this.ancestorsOf(record.name).map((group) => ({ groupName: group.name, groupArn: group.arn })),
        creationDate: record.created / 1000,
      },
    };
  }

  /** The thing group and the thing, each by name or ARN (both given must agree); adding a member again is a no-op. */
  private addThing(req: IotRequest): unknown {
    const { body } = req;
    const group = this.byNameOrArn(body, 'thingGroupName', 'thingGroupArn', 'thinggroup', (name) => this.record(name));
    const thing = this.byNameOrArn(body, 'thingName', 'thingArn', 'thing', (name) => this.things.record(name));
    if (body.overrideDynamicGroups !== undefined && typeof body.overrideDynamicGroups !== 'boolean') throw invalid('overrideDynamicGroups must be a boolean');
    this.membership.add(thing.name, group.name);
    return {};
  }

  private byNameOrArn<T extends { name: string; arn: string }>(body: Record<string, unknown>, nameField: string, arnField: string, resource: string, find: (name: string) => T): T {
    const name = body[nameField];
    const arn = body[arnField];
    if (name !== undefined && typeof name !== 'string') throw invalid(`${nameField} must be a string`);
    if (arn !== undefined && typeof arn !== 'string') throw invalid(`${arnField} must be a string`);
    if (name === undefined && arn === undefined) throw invalid(`${nameField} or ${arnField} is required`);
    let fromArn: string | undefined;
    if (arn !== undefined) {
      const prefix = this.account.arn(`${resource}/`);
      if (!arn.startsWith(prefix)) throw invalid(`${arnField} ${arn} is not a ${resource} ARN of this account and region`);
      fromArn = arn.slice(prefix.length);
    }
    if (name !== undefined && fromArn !== undefined && name !== fromArn) throw invalid(`${nameField} and ${arnField} name different resources`);
    return find((name ?? fromArn)!);
  }

  private listForThing(req: IotRequest): unknown {
    const thing = this.things.record(req.params[0]);
    const groups = this.membership.groupsOf(thing.name).map((name) => ({ groupName: name, groupArn: this.records.get(name)!.arn }));
    const { items, next } = page(groups, pageSizeQuery(req.query, 'maxResults'), req.query.get('nextToken'));
    return { thingGroups: items, nextToken: next };
  }

  private groupView(record: ThingGroupRecord): IotThingGroupView {
    return {
      thingGroupName: record.name,
      thingGroupArn: record.arn,
      thingGroupId: record.id,
      description: record.description,
      attributes: { ...record.attributes },
      parentGroupName: record.parentGroupName,
      things: this.membership.thingsIn(record.name),
      version: record.version,
      createdAt: new Date(record.created),
    };
  }
}
