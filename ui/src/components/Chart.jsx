// Small SVG line charts (no library): one or more series over the same x
// points, a y scale from 0 to the max, first/last x labels, a legend with
// the last values, and a hover title per point.
const W = 320;
const H = 120;
const PAD = { r: 8, t: 8, b: 20 };

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  const m = v / p;
  const step = m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10;
  return step * p;
}

function short(v) {
  if (v >= 1e9) return `${+(v / 1e9).toFixed(1)}G`;
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(v < 10 ? 2 : 0)}`;
}

export function Chart({ id, title, series, labels = [], format = short }) {
  const n = Math.max(0, ...series.map((s) => s.values.length));
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values.map((v) => Number(v) || 0))));
  const ticks = [0, 0.5, 1].map((f) => [f, String(format(max * f))]);
  // Room on the left for the longest y label (about 5.5 units a character at 9px).
  const left = Math.max(24, 8 + 5.5 * Math.max(...ticks.map(([, t]) => t.length)));
  const iw = W - left - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const x = (i) => left + (n <= 1 ? iw : (i * iw) / (n - 1));
  const y = (v) => PAD.t + ih - ((Number(v) || 0) / max) * ih;
  const desc = series
    .map((s) => `${s.name}: last ${format(Number(s.values[s.values.length - 1]) || 0)}, max ${format(Math.max(0, ...s.values.map(Number)))}`)
    .join('; ');
  return (
    <figure class="chart" id={id}>
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${title}. ${desc}`} class="chart-svg">
        {ticks.map(([f, label]) => (
          <g key={f}>
            <line class="grid" x1={left} x2={W - PAD.r} y1={PAD.t + ih * (1 - f)} y2={PAD.t + ih * (1 - f)} />
            <text class="axis" x={left - 4} y={PAD.t + ih * (1 - f) + 3} text-anchor="end">
              {label}
            </text>
          </g>
        ))}
        {labels.length > 0 && (
          <>
            <text class="axis" x={left} y={H - 4} text-anchor="start">
              {labels[0]}
            </text>
            <text class="axis" x={W - PAD.r} y={H - 4} text-anchor="end">
              {labels[labels.length - 1]}
            </text>
          </>
        )}
        {series.map((s, k) => {
          const pts = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
          return (
            <g key={s.name} class={`series s${k}`}>
              {n > 1 && k === 0 && (
                <polygon class="area" points={`${x(0)},${PAD.t + ih} ${pts} ${x(n - 1)},${PAD.t + ih}`} />
              )}
              <polyline class="line" points={pts} />
              {n === 1 && <circle class="dot" cx={x(0)} cy={y(s.values[0])} r="2.5" />}
            </g>
          );
        })}
        {n > 0 &&
          Array.from({ length: n }, (_, i) => (
            <rect key={i} class="hover" x={x(i) - iw / n / 2} y={PAD.t} width={Math.max(1, iw / Math.max(1, n))} height={ih}>
              <title>
                {(labels[i] ? `${labels[i]} — ` : '') + series.map((s) => `${s.name}: ${format(Number(s.values[i]) || 0)}`).join(', ')}
              </title>
            </rect>
          ))}
      </svg>
      <ul class="legend">
        {series.map((s, k) => (
          <li key={s.name} class={`s${k}`}>
            <span class="swatch" aria-hidden="true" />
            {s.name}: <strong>{format(Number(s.values[s.values.length - 1]) || 0)}</strong> now
            {s.values.length > 1 && <span class="legend-max">, max {format(Math.max(0, ...s.values.map((v) => Number(v) || 0)))}</span>}
          </li>
        ))}
      </ul>
    </figure>
  );
}
