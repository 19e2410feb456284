import { IotCaRegistration } from './iot-registration';

/** Port: authorities' AWS IoT registrations. */
export abstract class IotRegistrationRepository {
  /** The authority's registration in a target (the default target when none is named). */
  abstract find(authorityId: string, targetId?: string): Promise<IotCaRegistration | null>;
  /** The authority's registrations in every target. */
  abstract listFor(authorityId: string): Promise<IotCaRegistration[]>;
  abstract findByCaCertificateId(caCertificateId: string): Promise<IotCaRegistration | null>;
  /** Every target's registration of the CA (the same CA id in every account). */
  abstract listByCaCertificateId(caCertificateId: string): Promise<IotCaRegistration[]>;
  /** The targets some CA is registered in (ACTIVE or not). */
  abstract targetIds(): Promise<string[]>;
  /** Throws IOT_ALREADY_REGISTERED when the authority already has one. */
  abstract insert(registration: IotCaRegistration): Promise<void>;
  /** Replaces the authority's INACTIVE registration (registered again); false when it is not INACTIVE (any more). */
  abstract replaceInactive(registration: IotCaRegistration): Promise<boolean>;
  /** Sets INACTIVE unless it already is; false when it was. */
  abstract markInactive(authorityId: string, at: string, targetId?: string): Promise<boolean>;
  /** ACTIVE registrations whose devices register just in time (JITR). */
  abstract countActiveJitr(): Promise<number>;
}
