import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { Errors, fromPlainError, PlainDomainError } from '../common/errors';
import { ThreadPool, ThreadPoolError, ThreadTaskError } from '../common/thread-pool';
import { APP_CONFIG } from '../config/config.module';
import { AppConfig } from '../config/config';
import { ParsedCsr, parseCsr } from '../pki/csr';
import { CSR_THREAD_SCRIPT } from '../pki/csr-thread';

/**
 * Tasks that may wait for a CSR thread, per thread, before more are refused with a 503: far more than the requests
 * one process has in flight in normal operation, few enough that a stalled pool fails fast instead of piling up.
 */
const WAITING_PER_THREAD = 256;

/**
 * parseCsr (pki/csr.ts) for the request paths: on the CRYPTO_THREADS worker threads when there are any, so DER
 * parsing, key policy and the proof-of-possession signature check use the cores the event loop leaves idle
 * (docs/architecture.md, "Crypto threads"); inline with CRYPTO_THREADS=0. Either way a bad CSR is the same problem.
 * A thread that dies, or a full waiting line, is a 503 CRYPTO_THREADS_UNAVAILABLE (retryable); the thread is replaced.
 */
@Injectable()
export class CsrParser implements OnApplicationShutdown {
  private readonly pool: ThreadPool<string, ParsedCsr> | null;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    const threads = config.cryptoThreads;
    this.pool = threads > 0 ? new ThreadPool(CSR_THREAD_SCRIPT, threads, threads * WAITING_PER_THREAD) : null;
  }

  async parse(pem: string): Promise<ParsedCsr> {
    if (!this.pool) return parseCsr(pem);
    try {
      return revived(await this.pool.run(pem));
    } catch (error) {
      if (error instanceof ThreadTaskError) {
        if (error.payload) throw fromPlainError(error.payload as PlainDomainError);
        throw new Error('parsing the CSR failed in a crypto thread');
      }
      if (error instanceof ThreadPoolError) throw Errors.cryptoThreadsUnavailable(`the CSR could not be checked (${error.message}); retry`);
      throw error;
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.pool?.close();
  }
}

/** A ParsedCsr as it arrives from a thread: the structured clone turned its Buffer into a plain Uint8Array. */
function revived(csr: ParsedCsr): ParsedCsr {
  const spki = csr.publicKeySpki as Uint8Array;
  return { ...csr, publicKeySpki: Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength) };
}
