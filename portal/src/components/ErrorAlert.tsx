/** API errors shown in the UI's language (see api/errors.ts). */
import { Alert, App } from "antd";
import { useCallback } from "react";
import { useTranslation } from "react-i18next";

import { describeError } from "../api/errors";

export function ErrorAlert({ error, style }: { error: unknown; style?: React.CSSProperties }) {
  const { t } = useTranslation();
  if (!error) return null;
  const { title, detail } = describeError(error, t);
  return (
    <Alert type="error" showIcon message={title} description={detail} style={style} role="alert" />
  );
}

/** `notifyError(err)`: a notification in the corner for errors of one-off actions. */
export function useNotifyError(): (error: unknown) => void {
  const { t } = useTranslation();
  const { notification } = App.useApp();
  return useCallback(
    (error: unknown) => {
      const { title, detail } = describeError(error, t);
      notification.error({ message: title, description: detail, placement: "topRight" });
    },
    [t, notification],
  );
}
