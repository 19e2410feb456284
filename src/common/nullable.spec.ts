import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Type } from 'class-transformer';
import { IsInt, IsNumber, IsOptional, IsString, ValidateNested } from 'class-validator';
import { DomainError } from './errors';
import { Nullable } from './nullable';
import { validationPipe } from './pipes';

class InnerDto {
  @IsOptional() @IsString() label?: string;
  @IsString() required: string;
}

class OuterDto {
  @IsOptional() @IsNumber() fraction?: number;
  @IsOptional() @IsInt() days?: number;
  @Nullable() @IsString() clearable?: string | null;
  @IsOptional() @ValidateNested() @Type(() => InnerDto) inner?: InnerDto;
  @IsOptional() @ValidateNested({ each: true }) @Type(() => InnerDto) list?: InnerDto[];
}

async function findings(body: unknown, type: 'body' | 'query' = 'body'): Promise<string[] | 'accepted'> {
  try {
    await validationPipe.transform(body, { type, metatype: OuterDto, data: '' });
    return 'accepted';
  } catch (err) {
    assert.ok(err instanceof DomainError, String(err));
    assert.equal(err.code, 'VALIDATION_FAILED');
    return err.extra.errors as string[];
  }
}

describe('the validation pipe and null', () => {
  it('refuses null for an optional field (class-validator’s @IsOptional lets it through)', async () => {
    assert.deepEqual(await findings({ fraction: null }), ['fraction must not be null']);
    assert.deepEqual(await findings({ days: null, fraction: null }), ['fraction must not be null', 'days must not be null']);
  });

  it('refuses null inside nested DTOs and arrays of them, named by path', async () => {
    assert.deepEqual(await findings({ inner: { required: 'x', label: null } }), ['inner.label must not be null']);
    assert.deepEqual(await findings({ list: [{ required: 'x' }, { required: 'y', label: null }] }), ['list.1.label must not be null']);
    assert.deepEqual(await findings({ inner: null }), ['inner must not be null']);
  });

  it('still accepts an optional field left out, and a @Nullable() one sent as null', async () => {
    assert.equal(await findings({}), 'accepted');
    assert.equal(await findings({ clearable: null, fraction: 0.5 }), 'accepted');
    assert.deepEqual(await findings({ clearable: 5 }), ['clearable must be a string']);
  });

  it('reports null next to the other findings', async () => {
    const found = await findings({ fraction: null, inner: { required: 5 } });
    assert.ok(Array.isArray(found));
    assert.deepEqual([...found].sort(), ['fraction must not be null', 'inner.required must be a string']);
  });

  it('refuses a query string with a prototype key like any unknown key', async () => {
    assert.deepEqual(await findings({ constructor: '1' }, 'query'), ['property constructor should not exist']);
  });
});
