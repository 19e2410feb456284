/** A small SVG bar chart of our own (no charting library): one bar per bucket, its count above it. */
import { h } from 'preact';

export interface Bar {
  label: string;
  value: number;
  tone?: 'warn' | 'alert';
}

export function BarChart(props: { bars: Bar[]; title: string; testId?: string }) {
  const width = 560;
  const height = 180;
  const top = 20;
  const bottom = 30;
  const max = Math.max(1, ...props.bars.map((b) => b.value));
  const slot = width / Math.max(1, props.bars.length);
  const barWidth = Math.max(4, slot * 0.7);
  return h(
    'svg',
    { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': props.title, 'data-testid': props.testId },
    h('title', null, props.title),
    h('line', { x1: 0, y1: height - bottom, x2: width, y2: height - bottom, class: 'axis' }),
    ...props.bars.flatMap((bar, i) => {
      const barHeight = ((height - top - bottom) * bar.value) / max;
      const x = i * slot + (slot - barWidth) / 2;
      const y = height - bottom - barHeight;
      return [
        h('rect', { x, y, width: barWidth, height: barHeight, class: `bar ${bar.tone ?? ''}` }, h('title', null, `${bar.label}: ${bar.value}`)),
        h('text', { x: x + barWidth / 2, y: y - 4, class: 'bar-value', 'text-anchor': 'middle' }, String(bar.value)),
        h('text', { x: x + barWidth / 2, y: height - bottom + 14, class: 'bar-label', 'text-anchor': 'middle' }, bar.label),
      ];
    }),
  );
}
