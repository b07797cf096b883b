// Small display helpers: numbers, money, durations and timestamps.

export function num(v, digits = 0) {
  if (v === null || v === undefined || v === '') return '—';
  const n = Number(v);
  if (!Number.isFinite(n)) return String(v);
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function money(v) {
  if (v === null || v === undefined) return '—';
  const n = Number(v);
  if (n !== 0 && Math.abs(n) < 0.0001) return `$${n.toPrecision(2)}`;
  return `$${n.toLocaleString('en-US', { minimumFractionDigits: n && Math.abs(n) < 1 ? 4 : 2, maximumFractionDigits: 4 })}`;
}

/** A small dollar amount for chart axes: `$0`, `$0.25`, `$0.0000045`. */
export function moneyShort(v) {
  const n = Number(v) || 0;
  if (n === 0) return '$0';
  if (Math.abs(n) < 0.01) return `$${+n.toPrecision(2)}`;
  return `$${+n.toFixed(2)}`;
}

export function pct(v) {
  if (v === null || v === undefined) return '—';
  const n = Number(v);
  return `${(n <= 1 ? n * 100 : n).toFixed(1)}%`;
}

export function ms(v) {
  if (v === null || v === undefined) return '—';
  return `${num(v, 1)} ms`;
}

const pad = (n) => String(n).padStart(2, '0');

/** A unix-seconds or RFC 3339 time as local `YYYY-MM-DD HH:MM:SS`. */
export function time(v) {
  if (v === null || v === undefined || v === '') return '—';
  const d = typeof v === 'number' ? new Date(v * 1000) : new Date(v);
  if (Number.isNaN(d.getTime())) return String(v);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Unix seconds as local `HH:MM`. */
export function clock(secs) {
  const d = new Date(secs * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function yesNo(v) {
  if (v === null || v === undefined) return '—';
  return v === true || v === 1 || v === '1' ? 'yes' : 'no';
}

/** A value as short text for a table cell. */
export function text(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** A settings object as `key=value, ...` (lists joined by `+`). */
export function settings(obj) {
  if (!obj || typeof obj !== 'object') return text(obj);
  return Object.entries(obj)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : typeof v === 'object' && v !== null ? JSON.stringify(v) : v}`)
    .join(', ');
}
