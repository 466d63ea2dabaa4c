import { describe, expect, it } from 'vitest';
import { loadNative, type NativeErrnoError } from '../../lib/native';

const native = loadNative();

describe('native addon', () => {
  it('is loaded once', () => {
    expect(loadNative()).toBe(native);
  });

  it('reports the layout of bpf/syncookie.h', () => {
    const layout = native.layout();
    expect(layout.sizes.sc_secret).toBe(16);
    expect(layout.sizes.sc_config).toBe(24);
    expect(layout.sizes.sc_ports).toBe(8192);
    expect(layout.statNames.length).toBe(layout.constants.SC_STAT_COUNT);
    expect(layout.sizes.sc_stats).toBe(8 * layout.statNames.length);
    expect(layout.offsets).toEqual({
      config_generation: 0,
      config_flags: 4,
      config_rmem_max: 8,
      config_now_ms_override: 16,
      secret_k0: 0,
      secret_k1: 8,
    });
    expect(layout.constants.SC_PORT_WORDS * 8).toBe(layout.sizes.sc_ports);
    expect(layout.constants.SC_SECRET_SLOTS).toBeGreaterThan(1);
    expect(layout.constants.SC_CFG_HAVE_PREV).toBe(1);
    expect(layout.statNames[0]).toBe('synReceived');
    for (const name of layout.statNames) expect(name).toMatch(/^[a-z][A-Za-z]*$/);
    expect(new Set(layout.statNames).size).toBe(layout.statNames.length);
  });

  it('counts the possible CPUs', () => {
    expect(native.possibleCpus()).toBeGreaterThan(0);
  });

  it('reads CLOCK_TAI as a bigint close to the wall clock', () => {
    const tai = native.clockTaiNs();
    expect(typeof tai).toBe('bigint');
    const offsetNs = tai - BigInt(Date.now()) * 1_000_000n;
    // CLOCK_TAI runs ahead of UTC by the kernel's TAI offset (0 or 37 s).
    expect(offsetNs > -1_000_000_000n && offsetNs < 100_000_000_000n).toBe(true);
  });

  it('resolves interface names', () => {
    expect(native.ifNameToIndex('lo')).toBe(1);
    let error: NativeErrnoError | undefined;
    try {
      native.ifNameToIndex('scb-no-such0');
    } catch (e) {
      error = e as NativeErrnoError;
    }
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ errno: 19, code: 'ENODEV', op: 'if_nametoindex' });
    expect(error?.message).toBe('if_nametoindex: No such device (errno 19)');
  });

  it('rejects arguments of the wrong type with a TypeError', () => {
    expect(() => native.ifNameToIndex(1 as unknown as string)).toThrow(TypeError);
    expect(() => native.queryTcx('lo' as unknown as number)).toThrow(TypeError);
  });

  it('cannot construct its classes from JavaScript', () => {
    const Program = native.Program as unknown as new () => unknown;
    expect(() => new Program()).toThrow(TypeError);
  });
});
