/** "Used of total" as a bar with both figures, orange past 80 %, red when overcommitted. */
import { Progress, Tooltip, Typography } from "antd";
import { useTranslation } from "react-i18next";

import { useFormat } from "../i18n/format";

export function UsageBar({
  used,
  total,
  format,
  width = 160,
}: {
  used: number;
  total: number;
  /** How one figure is written: `f.mib`, `f.bytes`, a count. */
  format: (value: number) => string;
  width?: number;
}) {
  const { t } = useTranslation();
  const f = useFormat();
  const fraction = total > 0 ? used / total : 0;
  const status = fraction > 1 ? "exception" : "normal";
  const color = fraction > 1 ? undefined : fraction > 0.8 ? "#fa8c16" : undefined;
  return (
    <Tooltip title={t("inventory:usage", { used: format(used), total: format(total), percent: f.percent(fraction) })}>
      <div style={{ width }}>
        <Progress
          percent={Math.min(100, Math.round(fraction * 100))}
          status={status}
          strokeColor={color}
          size="small"
          showInfo={false}
        />
        <Typography.Text type="secondary" style={{ fontSize: 12 }}>
          {format(used)} / {format(total)}
        </Typography.Text>
      </div>
    </Tooltip>
  );
}
