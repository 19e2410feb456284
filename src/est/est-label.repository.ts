import { EstLabel } from './est-label';

/** Port: EST labels. */
export abstract class EstLabelRepository {
  abstract find(label: string): Promise<EstLabel | null>;
  abstract list(): Promise<EstLabel[]>;
  /** Stores the label; a label of that name already there is a unique violation (database/errors.ts). */
  abstract insert(label: EstLabel): Promise<void>;
  /** Deletes it; false when there was none. */
  abstract delete(label: string): Promise<boolean>;
}
