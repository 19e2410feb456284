import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequirePermission } from '../common/access.decorators';
import { Permission } from '../common/roles';
import { ApiSecured } from '../common/openapi';
import { SetupReportDto } from './setup-check.dto';
import { SetupCheckService } from './setup-check.service';

@ApiTags('setup')
@Controller('v1/setup')
export class SetupCheckController {
  constructor(private readonly setup: SetupCheckService) {}

  @Get('check')
  @RequirePermission(Permission.RunSetupCheck)
  @ApiOperation({
    summary: 'Self-check of the deployment: database, key backends, AWS, JITR settings, public TLS of PUBLIC_BASE_URL',
    description:
      'Runs from inside the service, with its own environment, credentials and network path. Always 200: each check is ok, warn, fail ' +
      'or skipped (not applicable, no call made), and `status` sums them up. Makes AWS calls only when AWS_REGION is set ' +
      '(credential chain, GetRegistrationCode, DescribeKey of active KMS-backed CAs). Connects to PUBLIC_BASE_URL over HTTPS and reports ' +
      'whether it presents a chain trusted by public roots, which AWS IoT requires to deliver JITR events. Each outside check is bounded ' +
      'to 5 s. Requires the admin role.',
  })
  @ApiOkResponse({ type: SetupReportDto, description: 'The checks and their overall status' })
  @ApiSecured()
  checkSetup(): Promise<SetupReportDto> {
    return this.setup.run();
  }
}
