import { conflicting } from './iot-api';

/** The fault knobs beyond throttling and failure modes (see IotStandInKnobs). */
export interface FaultKnobs {
  loseResponses?: Record<string, number>;
  conflictingUpdates?: Record<string, number>;
}

/**
 * Two faults AWS shows under load: an answer lost after the operation took effect, and a call refused with
 * ConflictingResourceUpdateException. Each knob holds a count per operation, counted down as it is used.
 */
export class LostAnswersAndConflicts {
  /** Answers lost after the operation took effect (see the loseResponses knob), by operation. */
  readonly lostResponses = new Map<string, number>();
  /** Calls refused with ConflictingResourceUpdateException by the conflictingUpdates knob, by operation. */
  readonly conflicts = new Map<string, number>();

  /** Read on every call; the counts are written back to it. */
  constructor(private readonly knobs: () => FaultKnobs) {}

  /** Refuses the call per the conflictingUpdates knob (before it takes effect); counts it down. */
  refuseIfConflicting(operation: string): void {
    const knobs = this.knobs();
    const left = knobs.conflictingUpdates?.[operation] ?? 0;
    if (left <= 0) return;
    knobs.conflictingUpdates = { ...knobs.conflictingUpdates, [operation]: left - 1 };
    this.conflicts.set(operation, (this.conflicts.get(operation) ?? 0) + 1);
    throw conflicting('A conflicting resource update exception. Two pending updates cause a conflict.');
  }

  /** Whether this (successful) answer is to be lost, per the loseResponses knob; counts it down. */
  loseAnswer(operation: string): boolean {
    const knobs = this.knobs();
    const left = knobs.loseResponses?.[operation] ?? 0;
    if (left <= 0) return false;
    knobs.loseResponses = { ...knobs.loseResponses, [operation]: left - 1 };
    this.lostResponses.set(operation, (this.lostResponses.get(operation) ?? 0) + 1);
    return true;
  }
}
