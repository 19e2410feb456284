import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import { AwsError } from './aws-error';

/** How a stand-in writes its answers on the wire. */
export interface WireProtocol {
  /** A successful answer: HTTP 200 with this body as JSON. */
  answer(res: http.ServerResponse, body: unknown): void;
  /** An error answer the SDK turns into the named exception. */
  error(res: http.ServerResponse, error: AwsError): void;
}

/**
 * AWS JSON 1.1 (AWS KMS): every call is `POST /` with the operation in `X-Amz-Target: <Service>.<Operation>` and the
 * input as a JSON body; errors carry the exception name in the body's `__type`.
 */
export const awsJson11 = {
  contentType: 'application/x-amz-json-1.1',

  /** The operation the X-Amz-Target header names for this service (`TrentService` for KMS); '' when none. */
  operation(req: http.IncomingMessage, service: string): string {
    const target = String(req.headers['x-amz-target'] ?? '');
    return target.startsWith(`${service}.`) ? target.slice(service.length + 1) : '';
  },

  hasContentType(req: http.IncomingMessage): boolean {
    return String(req.headers['content-type'] ?? '').startsWith(awsJson11.contentType);
  },

  /** The input; a body that is not JSON throws (the service answers it as its internal error). */
  body(raw: string): Record<string, unknown> {
    return JSON.parse(raw || '{}') as Record<string, unknown>;
  },

  answer(res: http.ServerResponse, body: unknown): void {
    res.writeHead(200, { 'Content-Type': awsJson11.contentType, 'x-amzn-RequestId': randomUUID() }).end(JSON.stringify(body));
  },

  error(res: http.ServerResponse, error: AwsError): void {
    res
      .writeHead(error.status, { 'Content-Type': awsJson11.contentType, 'x-amzn-RequestId': randomUUID() })
      .end(JSON.stringify({ __type: error.type, [error.messageMember]: error.message, ...error.fields }));
  },
};

/** A REST-JSON operation: its method, its raw path pattern (one capture group per path label) and its handler. */
export interface RestRoute<Request> {
  method: string;
  /** Matched against the raw path: labels are percent-encoded by the SDK, so `[^/]+` is one label. */
  path: RegExp;
  operation: string;
  handle(request: Request): unknown;
}

/**
 * REST-JSON (AWS IoT): the operation is the method and path; inputs sit in path labels, the query string, headers or
 * a JSON body; errors carry the exception name in the `x-amzn-ErrorType` header and a JSON body `{"message"}`.
 */
export const restJson = {
  /** The route a request takes and its path labels, still percent-encoded; undefined when no route matches. */
  route<Route extends { method: string; path: RegExp }>(routes: Route[], method: string | undefined, pathname: string): { route: Route; labels: string[] } | undefined {
    for (const route of routes) {
      const match = method === route.method ? route.path.exec(pathname) : null;
      if (match) return { route, labels: match.slice(1) };
    }
    return undefined;
  },

  /** Path labels decoded; a greedy label (`{arn+}`) keeps its slashes, the SDK encoding each segment. */
  decodeLabels(labels: string[], badRequest: (message: string) => Error): string[] {
    try {
      return labels.map((label) => label.split('/').map(decodeURIComponent).join('/'));
    } catch {
      throw badRequest('malformed percent-encoding in the path');
    }
  },

  /** The JSON object body; {} when there is none. */
  body(raw: string, headers: http.IncomingHttpHeaders, badRequest: (message: string) => Error): Record<string, unknown> {
    if (raw.length === 0) return {};
    if (!String(headers['content-type'] ?? '').startsWith('application/json')) throw badRequest('Content-Type must be application/json');
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      throw badRequest('the request body is not JSON');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('the request body must be a JSON object');
    return body as Record<string, unknown>;
  },

  answer(res: http.ServerResponse, body: unknown): void {
    res.writeHead(200, { 'Content-Type': 'application/json', 'x-amzn-RequestId': randomUUID() }).end(JSON.stringify(body));
  },

  error(res: http.ServerResponse, error: AwsError): void {
    res
      .writeHead(error.status, { 'Content-Type': 'application/json', 'x-amzn-ErrorType': error.type, 'x-amzn-RequestId': randomUUID() })
      .end(JSON.stringify({ [error.messageMember]: error.message, ...error.fields }));
  },
};
