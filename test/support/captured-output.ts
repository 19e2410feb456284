/**
 * Everything the process writes to stdout and stderr from now on, kept (and still written), for tests that show a
 * secret never reaches a log line. `restore` puts the original writers back.
 */
export class CapturedOutput {
  text = '';
  private readonly originals = { stdout: process.stdout.write, stderr: process.stderr.write };

  constructor() {
    for (const stream of ['stdout', 'stderr'] as const) {
      const original = this.originals[stream];
      process[stream].write = ((chunk: unknown, ...rest: unknown[]) => {
        this.text += String(chunk);
        return (original as (...a: unknown[]) => boolean).call(process[stream], chunk, ...rest);
      }) as typeof process.stdout.write;
    }
  }

  restore(): void {
    process.stdout.write = this.originals.stdout;
    process.stderr.write = this.originals.stderr;
  }
}
