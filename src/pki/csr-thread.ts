import { toPlainError } from '../common/errors';
import { serveThreadTasks } from '../common/thread-pool';
import { parseCsr } from './csr';

/**
 * The script of the CSR threads (certificates/csr-parser.ts): parseCsr off the event loop. The ParsedCsr it answers
 * is cloneable (its KeyObject too); a DomainError goes back as plain data with its code, so the caller's problem is
 * the one an inline parse gives. Any other error goes back as null (an internal error, as inline).
 */
export const CSR_THREAD_SCRIPT = __filename;

serveThreadTasks(CSR_THREAD_SCRIPT, (pem: string) => parseCsr(pem), toPlainError);
