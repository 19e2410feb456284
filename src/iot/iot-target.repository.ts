import { IotTarget } from './iot-target';

/** Port: the stored IoT targets (the default target is implicit and never stored). */
export abstract class IotTargetRepository {
  abstract list(): Promise<IotTarget[]>;
  abstract find(id: string): Promise<IotTarget | null>;
  /** Throws IOT_TARGET_EXISTS when the id is taken. */
  abstract insert(target: IotTarget): Promise<void>;
  abstract delete(id: string): Promise<void>;
  /** How many CA registrations, certificates, claims and EST labels name the target (a target in use cannot be deleted). */
  abstract references(id: string): Promise<{ registrations: number; certificates: number; claims: number; estLabels: number }>;
}
