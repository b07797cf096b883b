// Data loading hooks: useLoad (once, with reload) and usePoll (again every
// `ms` milliseconds while mounted). Loads never overlap: a reload asked for
// during a load runs right after it, and answers of an older `deps` are dropped.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export function usePoll(fetcher, ms, deps = []) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const r = useRef({ busy: false, again: false, gen: 0 });
  const fn = useRef(fetcher);
  fn.current = fetcher;

  const load = useCallback(async () => {
    const s = r.current;
    if (s.busy) {
      s.again = true;
      return;
    }
    s.busy = true;
    const gen = s.gen;
    try {
      const data = await fn.current();
      if (gen === s.gen) setState({ data, error: null, loading: false });
    } catch (error) {
      if (gen === s.gen) setState((p) => ({ data: p.data, error, loading: false }));
    } finally {
      s.busy = false;
      if (s.again) {
        s.again = false;
        load();
      }
    }
  }, []);

  useEffect(() => {
    const s = r.current;
    s.gen += 1;
    s.again = s.busy; // a load of older deps is running: load again after it
    setState({ data: null, error: null, loading: true });
    if (!s.busy) load();
    const t = ms
      ? setInterval(() => {
          if (!document.hidden) load();
        }, ms)
      : null;
    return () => {
      s.gen += 1;
      if (t) clearInterval(t);
    };
  }, deps);

  return { ...state, reload: load };
}

export const useLoad = (fetcher, deps = []) => usePoll(fetcher, 0, deps);
