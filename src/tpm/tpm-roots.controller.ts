import { Body, Controller, Delete, Get, Param, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { RequestContext } from '../common/actor';
import { Ctx, RequirePermission } from '../common/access.decorators';
import { Errors } from '../common/errors';
import { ApiProblems, ApiSecured } from '../common/openapi';
import { Permission } from '../common/roles';
import { CreateTpmRootDto, TpmRootDto, TpmRootListDto, toTpmRootDto } from './tpm.dto';
import { TpmRootsService } from './tpm-roots.service';

/** TPM manufacturer roots: the allow-list of EK-issuing CAs (docs/hardware-identity.md). */
@ApiTags('tpm')
@Controller('v1/tpm/manufacturer-roots')
export class TpmRootsController {
  constructor(private readonly roots: TpmRootsService) {}

  @Post()
  @RequirePermission(Permission.ManageTpmRoots)
  @ApiOperation({
    summary: 'Allow a TPM manufacturer root',
    description: 'Adds an EK-issuing CA certificate to the allow-list: attested enrollments accept EK certificates that chain to it. Audited (tpm-root.added). Requires the admin role.',
  })
  @ApiCreatedResponse({ type: TpmRootDto })
  @ApiSecured()
  @ApiProblems(Errors.invalidTpmRoot, Errors.tpmRootExists, Errors.validation)
  async createTpmRoot(@Ctx() ctx: RequestContext, @Body() body: CreateTpmRootDto): Promise<TpmRootDto> {
    return toTpmRootDto(await this.roots.add(ctx, body));
  }

  @Get()
  @RequirePermission(Permission.ReadInventory)
  @ApiOperation({ summary: 'List the allowed TPM manufacturer roots', description: 'Oldest first. Any role may read.' })
  @ApiOkResponse({ type: TpmRootListDto })
  @ApiSecured()
  async listTpmRoots(): Promise<TpmRootListDto> {
    return { items: (await this.roots.list()).map(toTpmRootDto) };
  }

  @Delete(':id')
  @RequirePermission(Permission.ManageTpmRoots)
  @ApiOperation({
    summary: 'Remove a TPM manufacturer root',
    description: 'EK certificates under it are refused from now on (challenges already issued can still be answered until they expire); certificates issued stay. Audited (tpm-root.removed). Requires the admin role.',
  })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiOkResponse({ type: TpmRootDto, description: 'The removed root' })
  @ApiSecured()
  @ApiProblems(Errors.tpmRootNotFound)
  async deleteTpmRoot(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<TpmRootDto> {
    return toTpmRootDto(await this.roots.remove(ctx, id));
  }
}
