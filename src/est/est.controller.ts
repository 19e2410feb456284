import { randomBytes } from 'node:crypto';
import { Controller, Get, HttpCode, Param, Post, Query, Req, Res, StreamableFile, UseGuards } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Public } from '../common/access.decorators';
import { Errors } from '../common/errors';
import { sendDownload } from '../common/downloads';
import { MEDIA_TYPES } from '../pki/certificate-files';
import { base64Lines } from '../pki/est';
import { pkcs12PasswordProblem } from '../pki/pkcs12';
import { EstCaller } from './est-authenticator';
import { DEFAULT_EST_LABEL } from './est-label';
import { EstLabelsService } from './est-labels.service';
import { EstService } from './est.service';
import { EstGuard, EstPrincipal } from './est.guard';
import { ServerKeygenQueryDto } from './est.dto';
import { CaCertsDocs, CERTS_ONLY, CsrAttrsDocs, EnrollDocs, LABEL_PARAM, PKCS10_MEDIA_TYPE, ReenrollDocs, ServerKeygenDocs } from './est.docs';
import { Idempotent } from '../common/idempotency';

const ENROLL_AUTH =
  'On a claim label the caller is the factory station: mutual TLS with the claim certificate (or its x5c JWT for POST /v1/provisioning/exchange), ' +
  'and the request is that claim’s exchange with all its rules (quota, allow-list, serial pattern, window, AWS IoT registration, audit); the device ' +
  'serial is the CSR subject’s serialNumber (2.5.4.5), else its CN. A claim certificate of another claim is a 403. On an authority label: ' +
  '`Authorization: Bearer <API key>` of a role that may issue certificates (operator, admin). Authenticated before the body is read.';

/**
 * EST (RFC 7030) on the service's listener: /.well-known/est/<operation> uses the label named `default`,
 * /.well-known/est/<label>/<operation> the label given. Errors are text/plain (ApiPlainTextErrors). See docs/est.md.
 */
@ApiTags('est')
@Controller('.well-known/est')
export class EstController {
  constructor(
    private readonly est: EstService,
    private readonly labels: EstLabelsService,
  ) {}

  @Get('cacerts')
  @Public()
  @ApiOperation({ summary: 'EST cacerts of the default label', description: 'As GET /.well-known/est/{label}/cacerts for the label named `default`.' })
  @CaCertsDocs()
  estCaCerts(@Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    return this.caCerts(DEFAULT_EST_LABEL, reply);
  }

  @Get(':label/cacerts')
  @Public()
  @ApiOperation({ summary: 'EST cacerts: the label’s CA chain', description: 'The issuing CA of the label (a claim label: the claim’s device CA) and each parent up to the root, as a certs-only CMS SignedData, base64. Public (RFC 7030 §4.1).' })
  @LABEL_PARAM
  @CaCertsDocs()
  estLabelCaCerts(@Param('label') label: string, @Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    return this.caCerts(label, reply);
  }

  @Post('simpleenroll')
  @Idempotent()
  @Public()
  @UseGuards(EstGuard)
  @HttpCode(200)
  @ApiOperation({ summary: 'EST simpleenroll under the default label', description: `As POST /.well-known/est/{label}/simpleenroll for the label named \`default\`. ${ENROLL_AUTH}` })
  @EnrollDocs()
  estSimpleEnroll(@EstPrincipal() caller: EstCaller, @Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    return this.enroll(caller, request, reply);
  }

  @Post(':label/simpleenroll')
  @Idempotent()
  @Public()
  @UseGuards(EstGuard)
  @HttpCode(200)
  @ApiOperation({ summary: 'EST simpleenroll: a certificate for a CSR', description: `RFC 7030 §4.2.1. ${ENROLL_AUTH}` })
  @LABEL_PARAM
  @EnrollDocs()
  estLabelSimpleEnroll(@EstPrincipal() caller: EstCaller, @Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    return this.enroll(caller, request, reply);
  }

  @Post('simplereenroll')
  @Idempotent()
  @Public()
  @UseGuards(EstGuard)
  @HttpCode(200)
  @ApiOperation({ summary: 'EST simplereenroll under the default label', description: 'As POST /.well-known/est/{label}/simplereenroll for the label named `default`.' })
  @ReenrollDocs()
  estSimpleReenroll(@EstPrincipal() caller: EstCaller, @Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    return this.reenroll(caller, request, reply);
  }

  @Post(':label/simplereenroll')
  @Idempotent()
  @Public()
  @UseGuards(EstGuard)
  @HttpCode(200)
  @ApiOperation({
    summary: 'EST simplereenroll: a device renews its certificate',
    description:
      'RFC 7030 §4.2.2. Mutual TLS with the device’s current certificate (or its x5c JWT for POST /v1/certificates/renew); the rules of POST ' +
      '/v1/certificates/renew apply (renewal window or campaign, a new key, not revoked or already renewed; the old certificate becomes superseded). ' +
      'The CSR subject and subjectAltName must be those of the current certificate. The certificate must belong to the label (its claim, or its ' +
      'authority), else 403.',
  })
  @LABEL_PARAM
  @ReenrollDocs()
  estLabelSimpleReenroll(@EstPrincipal() caller: EstCaller, @Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    return this.reenroll(caller, request, reply);
  }

  @Get('csrattrs')
  @Public()
  @ApiOperation({ summary: 'EST csrattrs of the default label', description: 'As GET /.well-known/est/{label}/csrattrs for the label named `default`.' })
  @CsrAttrsDocs()
  estCsrAttrs(@Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    return this.csrAttrs(DEFAULT_EST_LABEL, reply);
  }

  @Get(':label/csrattrs')
  @Public()
  @ApiOperation({
    summary: 'EST csrattrs: what a CSR under the label should hold',
    description:
      'RFC 7030 §4.5: DER CsrAttrs, base64: the key type (id-ecPublicKey with its curve, or rsaEncryption with the size), the signature ' +
      'algorithm (e.g. ecdsa-with-SHA256) and the subject attributes read (claim label: serialNumber and CN; authority label: CN). Public.',
  })
  @LABEL_PARAM
  @CsrAttrsDocs()
  estLabelCsrAttrs(@Param('label') label: string, @Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    return this.csrAttrs(label, reply);
  }

  @Post('serverkeygen')
  @Idempotent({ secretAnswer: true })
  @Public()
  @UseGuards(EstGuard)
  @HttpCode(200)
  @ApiOperation({ summary: 'EST serverkeygen under the default label', description: 'As POST /.well-known/est/{label}/serverkeygen for the label named `default`.' })
  @ServerKeygenDocs()
  estServerKeygen(
    @EstPrincipal() caller: EstCaller,
    @Query() query: ServerKeygenQueryDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<string | StreamableFile> {
    return this.serverKeygen(caller, query, request, reply);
  }

  @Post(':label/serverkeygen')
  @Idempotent({ secretAnswer: true })
  @Public()
  @UseGuards(EstGuard)
  @HttpCode(200)
  @ApiOperation({
    summary: 'EST serverkeygen: the service makes the key',
    description:
      `RFC 7030 §4.4, only where the label allows it (else 403). The CSR names the device (its key is ignored); the service makes a key of the label’s key type, ` +
      `issues its certificate as simpleenroll would (same rules and authentication) and answers multipart/mixed: the key as application/pkcs8 ` +
      `(base64 PKCS#8, not encrypted: the TLS channel protects it) and the certificate as certs-only PKCS#7. The key is never stored or logged. ${ENROLL_AUTH}`,
  })
  @LABEL_PARAM
  @ServerKeygenDocs()
  estLabelServerKeygen(
    @EstPrincipal() caller: EstCaller,
    @Query() query: ServerKeygenQueryDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<string | StreamableFile> {
    return this.serverKeygen(caller, query, request, reply);
  }

  private async caCerts(label: string, reply: FastifyReply): Promise<string> {
    const pkcs7 = await this.est.caCertificates(await this.labels.get(label));
    reply.header('Content-Type', 'application/pkcs7-mime').header('Content-Transfer-Encoding', 'base64');
    return base64Lines(pkcs7);
  }

  private async csrAttrs(label: string, reply: FastifyReply): Promise<string> {
    const attributes = this.est.csrAttributes(await this.labels.get(label));
    reply.header('Content-Type', 'application/csrattrs').header('Content-Transfer-Encoding', 'base64');
    return base64Lines(attributes);
  }

  private async enroll(caller: EstCaller, request: FastifyRequest, reply: FastifyReply): Promise<string> {
    const enrollment = await this.est.enroll(caller, csrText(request), false);
    reply.header('Content-Type', CERTS_ONLY).header('Content-Transfer-Encoding', 'base64');
    return base64Lines(enrollment.pkcs7);
  }

  private async reenroll(caller: EstCaller, request: FastifyRequest, reply: FastifyReply): Promise<string> {
    const enrollment = await this.est.reenroll(caller, csrText(request));
    reply.header('Content-Type', CERTS_ONLY).header('Content-Transfer-Encoding', 'base64');
    return base64Lines(enrollment.pkcs7);
  }

  private async serverKeygen(caller: EstCaller, query: ServerKeygenQueryDto, request: FastifyRequest, reply: FastifyReply): Promise<string | StreamableFile> {
    // Checked before anything is issued. The password comes in a header (never the URL, which proxies log) and goes
    // nowhere but into the file.
    const password = pkcs12PasswordOf(query.format, request.headers[PKCS12_PASSWORD_HEADER]);
    const enrollment = await this.est.enroll(caller, csrText(request), true);
    if (password !== undefined) {
      const file = await this.est.pkcs12Of(enrollment, password);
      reply.header('Cache-Control', 'no-store');
      return sendDownload(reply, { bytes: file, contentType: MEDIA_TYPES.p12, filename: `${enrollment.certificate.serial}.p12` });
    }
    const boundary = `est-${randomBytes(12).toString('hex')}`;
    reply.header('Content-Type', `multipart/mixed; boundary=${boundary}`);
    // RFC 7030 §4.4.2: the private key part first, then the certificate.
    return (
      `--${boundary}\r\nContent-Type: application/pkcs8\r\nContent-Transfer-Encoding: base64\r\n\r\n${base64Lines(enrollment.privateKeyPkcs8!)}` +
      `--${boundary}\r\nContent-Type: ${CERTS_ONLY}\r\nContent-Transfer-Encoding: base64\r\n\r\n${base64Lines(enrollment.pkcs7)}` +
      `--${boundary}--\r\n`
    );
  }
}

/** The body as text: the application/pkcs10 parser (EstModule.installBodyParser) hands it over as a string. */
function csrText(request: FastifyRequest): string {
  if (typeof request.body !== 'string') throw Errors.unsupportedMediaType(`send the CSR as ${PKCS10_MEDIA_TYPE}: base64 of its DER`);
  return request.body;
}

/** The header that carries the PKCS #12 password of serverkeygen?format=p12. */
export const PKCS12_PASSWORD_HEADER = 'x-pkcs12-password';

/** The PKCS #12 password when format=p12 asks for one (400 when it is missing or weak), else undefined. */
function pkcs12PasswordOf(format: ServerKeygenQueryDto['format'], header: string | string[] | undefined): string | undefined {
  if (format !== 'p12') {
    if (header !== undefined) throw Errors.validation(`${PKCS12_PASSWORD_HEADER} applies only with ?format=p12`);
    return undefined;
  }
  const problem = typeof header === 'string' ? pkcs12PasswordProblem(header) : 'send it once, in the X-Pkcs12-Password header';
  if (problem) throw Errors.validation(`X-Pkcs12-Password: ${problem} with format=p12`);
  return header as string;
}
