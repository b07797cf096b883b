// The sign-in screen: an admin token (checked with GET /api/v1/whoami), or
// an admin user's e-mail and password (POST /api/v1/auth/login answers an
// access token). Either token is kept in sessionStorage (this tab only).
import { useState } from 'preact/hooks';
import { login, setToken, whoami } from '../lib/api.js';

export function SignIn({ onSignedIn, reason }) {
  const [mode, setMode] = useState('token');
  const [token, setValue] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const enter = async (t) => {
    const who = await whoami(t);
    setToken(t);
    onSignedIn(who || { actor: 'admin', kind: 'token' });
  };

  const submit = async (e) => {
    e.preventDefault();
    if (mode === 'token' && !token.trim()) {
      setError('Enter an admin token.');
      return;
    }
    if (mode === 'user' && (!email.trim() || !password)) {
      setError('Enter your e-mail and password.');
      return;
    }
    setBusy(true);
    setError('');
    try {
      if (mode === 'token') {
        await enter(token.trim());
      } else {
        const session = await login(email.trim(), password);
        await enter(session.access_token);
      }
    } catch (err) {
      const refused = mode === 'token' ? 'token refused' : 'e-mail or password refused';
      setError(err.status === 401 ? `Sign-in failed: ${refused}${err.detail ? ` (${err.detail})` : '.'}` : err.detail || String(err));
      setBusy(false);
    }
  };

  const invalid = error ? 'true' : undefined;
  return (
    <main class="signin" id="main">
      <form class="card signin-card" onSubmit={submit} noValidate>
        <h1>Sluice console</h1>
        <p class="muted">Sign in with an admin token, or as an admin user. It is kept in this browser tab only.</p>
        {reason && <p class="info">{reason}</p>}
        <fieldset class="signin-mode">
          <legend>Sign in with</legend>
          <label>
            <input type="radio" id="mode-token" name="mode" checked={mode === 'token'} onChange={() => setMode('token')} /> an admin token
          </label>
          <label>
            <input type="radio" id="mode-user" name="mode" checked={mode === 'user'} onChange={() => setMode('user')} /> e-mail and password
          </label>
        </fieldset>
        {mode === 'token' ? (
          <div class="field">
            <label for="token">Admin token</label>
            <input id="token" name="token" type="password" autocomplete="current-password" value={token}
              aria-invalid={invalid} class={error ? 'invalid' : undefined} aria-describedby="error"
              onInput={(e) => setValue(e.currentTarget.value)} autofocus />
          </div>
        ) : (
          <>
            <div class="field">
              <label for="email">E-mail</label>
              <input id="email" name="email" type="email" autocomplete="username" value={email}
                aria-invalid={invalid} aria-describedby="error" onInput={(e) => setEmail(e.currentTarget.value)} autofocus />
            </div>
            <div class="field">
              <label for="password">Password</label>
              <input id="password" name="password" type="password" autocomplete="current-password" value={password}
                aria-invalid={invalid} aria-describedby="error" onInput={(e) => setPassword(e.currentTarget.value)} />
            </div>
          </>
        )}
        <div id="error" class="form-error" role="alert">
          {error && <p>{error}</p>}
        </div>
        <button type="submit" id="sign-in" class="primary" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
