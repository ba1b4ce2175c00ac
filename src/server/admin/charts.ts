/**
 * Charts for the admin console, drawn on the server as SVG with d3-scale (the scales of D3, the
 * well-kept charting toolkit; no browser code), so that they work under our CSP and without JavaScript.
 * Each is an image with a text alternative, and the page gives the same figures as a table.
 */
import { scaleBand, scaleLinear } from 'd3-scale';

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A horizontal bar chart: one bar per label, its value written beside it. */
export function barChart(input: { title: string; bars: ReadonlyArray<{ label: string; value: number }> }): string {
  const width = 640;
  const labelWidth = 200;
  const rowHeight = 32;
  const height = Math.max(1, input.bars.length) * rowHeight + 8;
  const y = scaleBand<string>().domain(input.bars.map((b) => b.label)).range([4, height - 4]).padding(0.2);
  const max = Math.max(1, ...input.bars.map((b) => b.value));
  const x = scaleLinear().domain([0, max]).range([0, width - labelWidth - 80]);
  const bars = input.bars
    .map((bar) => {
      const top = y(bar.label) ?? 0;
      const barWidth = Math.max(bar.value > 0 ? 2 : 0, x(bar.value));
      return [
        `<text x="${labelWidth - 8}" y="${(top + y.bandwidth() / 2).toFixed(1)}" text-anchor="end" dominant-baseline="middle" class="portcullis-chart__label">${escape(bar.label)}</text>`,
        `<rect x="${labelWidth}" y="${top.toFixed(1)}" width="${barWidth.toFixed(1)}" height="${y.bandwidth().toFixed(1)}" class="portcullis-chart__bar"></rect>`,
        `<text x="${(labelWidth + barWidth + 8).toFixed(1)}" y="${(top + y.bandwidth() / 2).toFixed(1)}" dominant-baseline="middle" class="portcullis-chart__value">${bar.value.toLocaleString('en-GB')}</text>`,
      ].join('');
    })
    .join('');
  const description = input.bars.map((b) => `${b.label}: ${b.value}`).join('; ');
  return `<svg class="portcullis-chart" role="img" aria-label="${escape(`${input.title}. ${description}`)}" viewBox="0 0 ${width} ${height}" width="100%" focusable="false"><title>${escape(input.title)}</title>${bars}</svg>`;
}
