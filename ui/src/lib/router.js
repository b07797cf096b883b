// Hash routing by hand: `#/page/arg` → { page, args }; default `#/overview`.
import { useEffect, useState } from 'preact/hooks';

export function parseHash(hash) {
  const path = (hash || '').replace(/^#\/?/, '').split('?')[0];
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { page: parts[0] || 'overview', args: parts.slice(1) };
}

export function useRoute() {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseHash(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

export function navigate(path) {
  location.hash = `#/${path}`;
}
