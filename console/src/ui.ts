/** Small view helpers shared by the pages: `h` is Preact's element factory (no JSX, so no extra compiler setup). */
import { h, type ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';

export { h };

export function Badge(props: { value: string | null | undefined }) {
  const value = props.value ?? 'none';
  return h('span', { class: `badge badge-${value}`, 'data-status': value }, value);
}

export function Tile(props: { label: string; value: ComponentChildren; testId?: string; tone?: string }) {
  return h('div', { class: `tile ${props.tone ?? ''}`, 'data-testid': props.testId }, h('div', { class: 'tile-value' }, props.value), h('div', { class: 'tile-label' }, props.label));
}

export function ErrorLine(props: { error: unknown }) {
  if (!props.error) return null;
  return h('p', { class: 'error', role: 'alert' }, String((props.error as Error).message ?? props.error));
}

export function Progress(props: { value: number; max: number; label?: string }) {
  const percent = props.max > 0 ? Math.min(100, Math.round((100 * props.value) / props.max)) : 0;
  return h(
    'div',
    { class: 'progress', role: 'progressbar', 'aria-valuenow': props.value, 'aria-valuemax': props.max, title: props.label ?? `${props.value} / ${props.max}` },
    h('div', { class: 'progress-fill', style: { width: `${percent}%` } }),
  );
}

export function date(value: string | null | undefined): string {
  return value ? value.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC') : '—';
}

/** Loads once (and again when `deps` change); `reload` runs it again. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[] = []): { data: T | undefined; error: unknown; loading: boolean; reload: () => void } {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (error) => live && setState({ error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { data: state.data, error: state.error, loading: state.loading, reload: () => setTick((t) => t + 1) };
}

/** Calls `tick` every `ms` while the component is shown (the campaign page's live progress). */
export function usePolling(tick: () => void, ms: number): void {
  useEffect(() => {
    const timer = setInterval(tick, ms);
    return () => clearInterval(timer);
  }, [ms]);
}
