/** Which things are in which (static) thing groups: kept apart so that both things and thing groups can read it. */
export class ThingGroupMembership {
  /** thing name → names of its thing groups, in the order it was added. */
  private readonly groupsByThing = new Map<string, Set<string>>();

  /** Adds the thing to the group; adding a member again changes nothing. */
  add(thingName: string, groupName: string): void {
    const groups = this.groupsByThing.get(thingName) ?? new Set<string>();
    groups.add(groupName);
    this.groupsByThing.set(thingName, groups);
  }

  /** Names of the thing groups a thing is in, in the order it was added. */
  groupsOf(thingName: string): string[] {
    return [...(this.groupsByThing.get(thingName) ?? [])];
  }

  /** Names of the things in a group, in the order they were first added to any group. */
  thingsIn(groupName: string): string[] {
    return [...this.groupsByThing.entries()].filter(([, groups]) => groups.has(groupName)).map(([thing]) => thing);
  }
}
