/**
 * Port: what a device's renewal asks of the rotation campaigns (rotation/ implements it, above certificates/). A
 * campaign covering a certificate lets it renew before its profile's renewal window opens; a renewal completes the
 * certificate's place in every campaign waiting for it, in the renewal's transaction.
 */
export abstract class RenewalCampaigns {
  abstract coveredByOpenCampaign(certificateId: string): Promise<boolean>;
  /** Marks the certificate renewed in every campaign that waits for it; completes campaigns left with nothing pending. */
  abstract markRenewed(certificateId: string, replacementId: string, at: string): Promise<void>;
}
