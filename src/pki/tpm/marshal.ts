import { DomainError, Errors } from '../../common/errors';

/** A TPM structure that does not parse: always a 400, naming the structure. */
export function malformed(what: string, reason: string): DomainError {
  return Errors.tpmEvidenceMalformed(`${what}: ${reason}`);
}

/** Reads big-endian TPM marshalled data (Part 2, 4), refusing reads past the end. */
export class TpmReader {
  private offset = 0;

  constructor(
    private readonly data: Buffer,
    private readonly what: string,
  ) {}

  get position(): number {
    return this.offset;
  }

  private take(n: number): Buffer {
    if (this.offset + n > this.data.length) throw malformed(this.what, `truncated at byte ${this.offset} (needs ${n} more)`);
    const out = this.data.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  u8(): number {
    return this.take(1).readUInt8(0);
  }

  u16(): number {
    return this.take(2).readUInt16BE(0);
  }

  u32(): number {
    return this.take(4).readUInt32BE(0);
  }

  u64(): bigint {
    return this.take(8).readBigUInt64BE(0);
  }

  bytes(n: number): Buffer {
    return Buffer.from(this.take(n));
  }

  /** A TPM2B_*: a 16-bit size then that many bytes; `max` bounds the size. */
  tpm2b(max = 4096): Buffer {
    const size = this.u16();
    if (size > max) throw malformed(this.what, `a sized buffer of ${size} bytes exceeds ${max}`);
    return this.bytes(size);
  }

  /** The bytes read so far from `start`. */
  slice(start: number): Buffer {
    return Buffer.from(this.data.subarray(start, this.offset));
  }

  end(): void {
    if (this.offset !== this.data.length) throw malformed(this.what, `${this.data.length - this.offset} trailing bytes`);
  }
}

export function u16(value: number): Buffer {
  const out = Buffer.alloc(2);
  out.writeUInt16BE(value);
  return out;
}

export function u32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value >>> 0);
  return out;
}

/** Marshals a TPM2B_*: 16-bit size, then the bytes. */
export function tpm2b(data: Buffer): Buffer {
  return Buffer.concat([u16(data.length), data]);
}
