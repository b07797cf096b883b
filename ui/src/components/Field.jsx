// A labelled form field (input, select, textarea or checkbox). `name` is
// the API field it edits: when the last error's detail starts with that
// field (`namespace_code: ...`), the input is marked invalid.
import { fieldMatches, errorField } from '../lib/api.js';

export function Field({
  id,
  label,
  name,
  value,
  onInput,
  error,
  type = 'text',
  options,
  textarea,
  hint,
  required,
  placeholder,
  rows = 4,
  autocomplete,
  ...rest
}) {
  const field = error ? errorField(error.detail || error.message) : null;
  const invalid = fieldMatches(field, name);
  const common = {
    id,
    name,
    class: invalid ? 'invalid' : undefined,
    'aria-invalid': invalid ? 'true' : undefined,
    'aria-describedby': invalid ? 'error' : hint ? `${id}-hint` : undefined,
    required,
    placeholder,
    ...rest,
  };
  if (type === 'checkbox') {
    return (
      <div class="field check">
        <input type="checkbox" {...common} checked={!!value} onChange={(e) => onInput(e.currentTarget.checked)} />
        <label for={id}>{label}</label>
        {hint && <small id={`${id}-hint`}>{hint}</small>}
      </div>
    );
  }
  let control;
  if (options) {
    control = (
      <select {...common} value={value ?? ''} onChange={(e) => onInput(e.currentTarget.value)}>
        {options.map((o) => {
          const [v, l] = Array.isArray(o) ? o : [o, o];
          return (
            <option key={v} value={v}>
              {l}
            </option>
          );
        })}
      </select>
    );
  } else if (textarea) {
    control = <textarea {...common} rows={rows} value={value ?? ''} onInput={(e) => onInput(e.currentTarget.value)} />;
  } else {
    control = (
      <input
        {...common}
        type={type}
        autocomplete={autocomplete || 'off'}
        value={value ?? ''}
        onInput={(e) => onInput(e.currentTarget.value)}
      />
    );
  }
  return (
    <div class="field">
      <label for={id}>
        {label}
        {required && <span class="req" aria-hidden="true"> *</span>}
      </label>
      {control}
      {hint && (
        <small id={`${id}-hint`} class="hint">
          {hint}
        </small>
      )}
    </div>
  );
}

/** Form state helper: `[values, set(name)(value)]`. */
export function bind(values, setValues) {
  return (name) => (v) => setValues({ ...values, [name]: v });
}
