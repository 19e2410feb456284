import { Column, Entity, PrimaryColumn } from 'typeorm';

@Entity('local_keys')
export class LocalKeyEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ name: 'key_spec', type: 'varchar', length: 16 }) keySpec: string;
  @Column({ type: 'varchar', length: 200 }) label: string;
  @Column({ name: 'public_key_spki', type: 'text' }) publicKeySpki: string;
  /** AES-256-GCM: base64(iv ‖ tag ‖ ciphertext of the PKCS #8 DER), AAD = key id. */
  @Column({ type: 'text' }) ciphertext: string;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
}
