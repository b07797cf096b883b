// A modal dialog on the native <dialog> element: focus moves into it on
// open (the first field, else the first button), Escape closes it, and
// focus goes back to what had it before.
import { useLayoutEffect, useRef } from 'preact/hooks';

let seq = 0;

export function Dialog({ title, onClose, children, wide }) {
  const ref = useRef(null);
  const titleId = useRef(`dialog-title-${++seq}`).current;

  useLayoutEffect(() => {
    const d = ref.current;
    const before = document.activeElement;
    if (d && !d.open) {
      if (typeof d.showModal === 'function') d.showModal();
      else d.setAttribute('open', '');
    }
    const first =
      d.querySelector('[data-autofocus]') ||
      d.querySelector('input:not([type=hidden]):not([disabled]), select, textarea') ||
      d.querySelector('button:not(.dialog-close)') ||
      d;
    first.focus();
    return () => {
      if (d.open && typeof d.close === 'function') d.close();
      if (before && before.focus && document.contains(before)) before.focus();
    };
  }, []);

  const cancel = (e) => {
    e.preventDefault();
    onClose();
  };
  const key = (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      onClose();
    }
  };

  return (
    <dialog
      ref={ref}
      class={wide ? 'dialog wide' : 'dialog'}
      aria-labelledby={titleId}
      onCancel={cancel}
      onKeyDown={key}
      tabIndex={-1}
    >
      <div class="dialog-head">
        <h2 id={titleId}>{title}</h2>
        <button type="button" class="dialog-close ghost" aria-label="Close" onClick={onClose}>
          ×
        </button>
      </div>
      <div class="dialog-body">{children}</div>
    </dialog>
  );
}
