/**
 * A cli-progress bar on stderr (stdout stays for the result, so `--json` output pipes cleanly). Without a terminal
 * it stays silent unless forced with --progress, which then prints a line per update.
 */
import { Presets, SingleBar } from 'cli-progress';

export class ProgressBar {
  private readonly bar?: SingleBar;

  constructor(label: string, total: number, unit: string, enabled: boolean) {
    if (!enabled) return;
    this.bar = new SingleBar(
      {
        stream: process.stderr,
        format: `${label} [{bar}] {percentage}% | {value}/{total}${unit ? ` ${unit}` : ''}`,
        noTTYOutput: true,
        notTTYSchedule: 250,
        hideCursor: true,
      },
      Presets.shades_classic,
    );
    this.bar.start(total, 0);
  }

  update(value: number, total?: number): void {
    if (total !== undefined) this.bar?.setTotal(total);
    this.bar?.update(value);
  }

  increment(by = 1): void {
    this.bar?.increment(by);
  }

  stop(): void {
    this.bar?.stop();
  }
}
