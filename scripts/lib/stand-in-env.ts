/** A non-negative number from the environment, for the stand-ins' knobs. */
export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number`);
  return value;
}

/** Stops the stand-in on Ctrl-C or SIGTERM. */
export function stopOnSignals(stop: () => Promise<void>): void {
  const handler = () => void stop().then(() => process.exit(0));
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}
