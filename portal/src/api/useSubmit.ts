import { useCallback, useState } from "react";

/** A form's submit state, the same in every dialog: busy while the work runs, and the
 * work's error kept for the dialog's ErrorAlert (cleared when the next try starts). */
export function useSubmit() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = useCallback(async (work: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await work();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, setError, submit };
}
