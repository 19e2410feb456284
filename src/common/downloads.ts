import { StreamableFile } from '@nestjs/common';
import type { FastifyReply } from 'fastify';

/** A file answered as a download: its bytes, the Content-Type, and the name to save it under. */
export interface Download {
  bytes: Buffer;
  contentType: string;
  filename: string;
}

/**
 * Answers with the file as an attachment. The name is reduced to [A-Za-z0-9._-] (it is built from ids and serials,
 * and a quote or a line break in it would break the header).
 */
export function sendDownload(reply: FastifyReply, download: Download): StreamableFile {
  const filename = download.filename.replace(/[^A-Za-z0-9._-]/g, '_');
  reply.header('Content-Type', download.contentType).header('Content-Disposition', `attachment; filename="${filename}"`);
  return new StreamableFile(download.bytes);
}
