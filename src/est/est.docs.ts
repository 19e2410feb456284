import { ApiBearerAuth, ApiBody, ApiConsumes, ApiHeader, ApiOkResponse, ApiParam, ApiProduces } from '@nestjs/swagger';
import { Errors } from '../common/errors';
import { RENEWAL_PROBLEMS } from '../certificates/renewal.controller';
import { EXCHANGE_PROBLEMS } from '../claims/provisioning.controller';
import { ApiPlainTextErrors, ApiProblems, CERTIFICATE_JWT_SCHEME, ProblemDeclaration, responseHeaders } from '../common/openapi';
import { MAX_EST_BODY_LENGTH } from '../pki/est';
import { EST_LABEL_PATTERN } from './est-label';

/** The OpenAPI description of the EST routes (est.controller.ts): media types, bodies, and their plain-text problems. */

export const EST_BASE_PATH = '/.well-known/est';
export const PKCS10_MEDIA_TYPE = 'application/pkcs10';
export const CERTS_ONLY = 'application/pkcs7-mime; smime-type=certs-only';

export const LABEL_PARAM = ApiParam({ name: 'label', description: 'An EST label (GET /v1/est/labels)', schema: { type: 'string', pattern: EST_LABEL_PATTERN.source } });
// `format: binary`: the body is the raw payload, not a JSON string, so generated clients hand it over as bytes
// (a Blob) rather than JSON-encoding a request or typing an answer as a string they never get.
const BASE64_BODY = { type: 'string', format: 'binary', description: 'base64 (lines of 64 characters)' } as const;

/** The request body of the enrollment operations: the base64 DER PKCS#10 (RFC 7030 §4.2.1). */
function csrBody(): MethodDecorator {
  return (target, key, descriptor) => {
    ApiConsumes(PKCS10_MEDIA_TYPE)(target, key, descriptor);
    ApiBody({ description: `base64 of the DER PKCS#10 request (line breaks allowed; a PEM block is accepted too), at most ${MAX_EST_BODY_LENGTH} characters`, schema: { type: 'string', format: 'binary' } })(target, key, descriptor);
  };
}

/** What an enrollment can answer: authentication (claim certificate or API key), the exchange's or issuance's refusals. */
const ENROLL_PROBLEMS: readonly ProblemDeclaration[] = [
  Errors.estLabelNotFound,
  Errors.estLabelMismatch,
  Errors.forbidden,
  Errors.unsupportedMediaType,
  Errors.claimNotFound,
  ...EXCHANGE_PROBLEMS,
];

export function CaCertsDocs(): MethodDecorator {
  return (target, key, descriptor) => {
    ApiProduces('application/pkcs7-mime')(target, key, descriptor);
    ApiOkResponse({
      description: 'certs-only CMS SignedData (DER), base64: `curl … | openssl base64 -d | openssl pkcs7 -inform DER -print_certs`',
      headers: responseHeaders('Content-Transfer-Encoding'),
      content: { 'application/pkcs7-mime': { schema: BASE64_BODY } },
    })(target, key, descriptor);
    ApiPlainTextErrors()(target, key, descriptor);
    ApiProblems(Errors.estLabelNotFound, Errors.claimNotFound, Errors.authorityNotFound)(target, key, descriptor);
  };
}

export function CsrAttrsDocs(): MethodDecorator {
  return (target, key, descriptor) => {
    ApiProduces('application/csrattrs')(target, key, descriptor);
    ApiOkResponse({
      description: 'DER CsrAttrs, base64: `curl … | openssl base64 -d | openssl asn1parse -inform DER`',
      headers: responseHeaders('Content-Transfer-Encoding'),
      content: { 'application/csrattrs': { schema: BASE64_BODY } },
    })(target, key, descriptor);
    ApiPlainTextErrors()(target, key, descriptor);
    ApiProblems(Errors.estLabelNotFound)(target, key, descriptor);
  };
}

export function EnrollDocs(): MethodDecorator {
  return (target, key, descriptor) => {
    csrBody()(target, key, descriptor);
    ApiBearerAuth(CERTIFICATE_JWT_SCHEME)(target, key, descriptor);
    ApiProduces('application/pkcs7-mime')(target, key, descriptor);
    ApiOkResponse({
      description: 'The new certificate in a certs-only CMS SignedData (DER), base64; Content-Type `application/pkcs7-mime; smime-type=certs-only`',
      headers: responseHeaders('Content-Transfer-Encoding'),
      content: { 'application/pkcs7-mime': { schema: BASE64_BODY } },
    })(target, key, descriptor);
    ApiPlainTextErrors()(target, key, descriptor);
    ApiProblems(...ENROLL_PROBLEMS)(target, key, descriptor);
  };
}

export function ServerKeygenDocs(): MethodDecorator {
  return (target, key, descriptor) => {
    csrBody()(target, key, descriptor);
    ApiBearerAuth(CERTIFICATE_JWT_SCHEME)(target, key, descriptor);
    ApiProduces('multipart/mixed', 'application/x-pkcs12')(target, key, descriptor);
    ApiHeader({ name: 'X-Pkcs12-Password', required: false, description: 'With ?format=p12 (required then): the password of the PKCS #12 file, 8-128 characters' })(target, key, descriptor);
    ApiOkResponse({
      description:
        'Two parts: application/pkcs8 (the key, base64 PKCS#8 DER) and application/pkcs7-mime; smime-type=certs-only (the certificate, base64); ' +
        'with ?format=p12 a PKCS #12 file (DER) holding the key, the certificate and its chain',
      headers: responseHeaders('Content-Disposition'),
      content: {
        'multipart/mixed': { schema: { type: 'string', format: 'binary', description: 'RFC 2046 multipart body; the boundary is in Content-Type' } },
        'application/x-pkcs12': { schema: { type: 'string', format: 'binary' } },
      },
    })(target, key, descriptor);
    ApiPlainTextErrors()(target, key, descriptor);
    ApiProblems(...ENROLL_PROBLEMS, Errors.serverKeygenNotAllowed, Errors.keyEncryptionNotSupported)(target, key, descriptor);
  };
}

export function ReenrollDocs(): MethodDecorator {
  return (target, key, descriptor) => {
    csrBody()(target, key, descriptor);
    ApiBearerAuth(CERTIFICATE_JWT_SCHEME)(target, key, descriptor);
    ApiProduces('application/pkcs7-mime')(target, key, descriptor);
    ApiOkResponse({
      description: 'The successor certificate in a certs-only CMS SignedData (DER), base64; Content-Type `application/pkcs7-mime; smime-type=certs-only`',
      headers: responseHeaders('Content-Transfer-Encoding'),
      content: { 'application/pkcs7-mime': { schema: BASE64_BODY } },
    })(target, key, descriptor);
    ApiPlainTextErrors()(target, key, descriptor);
    ApiProblems(Errors.estLabelNotFound, Errors.estLabelMismatch, Errors.unsupportedMediaType, ...RENEWAL_PROBLEMS)(target, key, descriptor);
  };
}
