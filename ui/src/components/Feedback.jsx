// App-wide feedback: the global notice area (#notice: success message and
// the `warnings` of a change), the confirm dialog (#confirm-yes /
// #confirm-no) for destructive actions, and the per-form error area.
import { createContext } from 'preact';
import { useContext, useState } from 'preact/hooks';
import { Dialog } from './Dialog.jsx';

const Ctx = createContext(null);

export function FeedbackProvider({ children }) {
  const [notice, setNotice] = useState(null);
  const [ask, setAsk] = useState(null);
  const value = {
    /** Shows `message` and the answer's warnings in #notice. */
    notify(message, answer) {
      const warnings = answer && Array.isArray(answer.warnings) ? answer.warnings : [];
      setNotice({ message, warnings, at: Date.now() });
    },
    clearNotice: () => setNotice(null),
    /** Asks before running `run` (async); its error stays in the dialog. */
    confirm(opts) {
      setAsk(opts);
    },
    notice,
  };
  return (
    <Ctx.Provider value={value}>
      {children}
      {ask && <ConfirmDialog {...ask} onDone={() => setAsk(null)} />}
    </Ctx.Provider>
  );
}

export const useFeedback = () => useContext(Ctx);

export function NoticeArea() {
  const { notice, clearNotice } = useFeedback();
  return (
    <div id="notice" class="notice" role="status" aria-live="polite">
      {notice && (
        <div class={notice.warnings.length ? 'notice-box warn' : 'notice-box ok'}>
          <div class="notice-text">
            <p>{notice.message}</p>
            {notice.warnings.length > 0 && (
              <>
                <p class="warn-title">Warnings ({notice.warnings.length}):</p>
                <ul class="warnings">
                  {notice.warnings.map((w, i) => (
                    <li key={i}>{w}</li>
                  ))}
                </ul>
              </>
            )}
          </div>
          <button type="button" class="ghost small" id="notice-dismiss" onClick={clearNotice}>
            Dismiss
          </button>
        </div>
      )}
    </div>
  );
}

function ConfirmDialog({ title, message, yes = 'Delete', run, onDone }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const go = async () => {
    setBusy(true);
    setError(null);
    try {
      await run();
      onDone();
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return (
    <Dialog title={title} onClose={onDone}>
      <p class="confirm-message">{message}</p>
      <FormError error={error} />
      <div class="form-actions">
        <button type="button" id="confirm-yes" class="danger" disabled={busy} onClick={go}>
          {busy ? 'Working…' : yes}
        </button>
        <button type="button" id="confirm-no" data-autofocus onClick={onDone}>
          Cancel
        </button>
      </div>
    </Dialog>
  );
}

/** The error area of a form (#error): the API's detail as is. */
export function FormError({ error, id = 'error' }) {
  return (
    <div id={id} class="form-error" role="alert" aria-live="assertive">
      {error && <p>{error.detail || error.message || String(error)}</p>}
    </div>
  );
}

/** A page-level load error (not a form). */
export function LoadError({ error }) {
  if (!error) return null;
  return (
    <p class="load-error" role="alert">
      Could not load: {error.detail || error.message}
    </p>
  );
}
