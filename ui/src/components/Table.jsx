// A data table with a text filter over its visible columns and client-side
// pagination (20 rows a page, prev/next, "page x of y"). Columns:
// { key, label, value?(row) → text for filter/sort, render?(row) → cell }.
// Rows get data-id from rowId(row). Scrolls horizontally on narrow screens.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { text } from '../lib/format.js';

export const PAGE_SIZE = 20;

export function Table({ id, columns, rows, rowId, empty = 'Nothing here yet.', caption, rowClass, tools }) {
  const [filter, setFilter] = useState('');
  const [page, setPage] = useState(0);
  const list = rows || [];
  const cellText = (c, r) => (c.value ? text(c.value(r)) : c.key ? text(r[c.key]) : '');

  const shown = useMemo(() => {
    const q = filter.trim().toLowerCase();
    if (!q) return list;
    return list.filter((r) => columns.some((c) => cellText(c, r).toLowerCase().includes(q)));
  }, [list, filter, columns]);

  const pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
  const current = Math.min(page, pages - 1);
  useEffect(() => setPage(0), [filter]);
  const slice = shown.slice(current * PAGE_SIZE, (current + 1) * PAGE_SIZE);

  return (
    <div class="table-block">
      <div class="table-tools">
        <div class="filter">
          <label for={`${id}-filter`}>Filter</label>
          <input
            id={`${id}-filter`}
            type="search"
            value={filter}
            placeholder="Type to filter…"
            onInput={(e) => setFilter(e.currentTarget.value)}
          />
        </div>
        {tools}
        <span class="count">
          {shown.length === list.length ? `${list.length} rows` : `${shown.length} of ${list.length} rows`}
        </span>
      </div>
      <div class="table-scroll" tabIndex={0} role="region" aria-label={caption || id}>
        <table id={id}>
          {caption && <caption class="sr-only">{caption}</caption>}
          <thead>
            <tr>
              {columns.map((c) => (
                <th key={c.label} scope="col" class={c.class}>
                  {c.label}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {slice.length === 0 && (
              <tr class="empty">
                <td colSpan={columns.length}>{list.length ? 'No row matches the filter.' : empty}</td>
              </tr>
            )}
            {slice.map((r, i) => (
              <tr key={rowId ? rowId(r) : i} data-id={rowId ? rowId(r) : undefined} class={rowClass ? rowClass(r) : undefined}>
                {columns.map((c) => (
                  <td key={c.label} class={c.class}>
                    {c.render ? c.render(r) : cellText(c, r)}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <nav class="pager" aria-label={`${caption || id} pages`}>
        <button type="button" id={`${id}-prev`} class="small" disabled={current === 0} onClick={() => setPage(current - 1)}>
          ‹ Prev
        </button>
        <span aria-live="polite">
          Page {current + 1} of {pages}
        </span>
        <button
          type="button"
          id={`${id}-next`}
          class="small"
          disabled={current >= pages - 1}
          onClick={() => setPage(current + 1)}
        >
          Next ›
        </button>
      </nav>
    </div>
  );
}
