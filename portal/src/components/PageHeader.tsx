/** A page's title row with its actions on the right. */
import { Flex, Typography } from "antd";
import type { ReactNode } from "react";

export function PageHeader({
  title,
  extra,
  subtitle,
}: {
  title: ReactNode;
  extra?: ReactNode;
  subtitle?: ReactNode;
}) {
  return (
    <Flex justify="space-between" align="center" wrap="wrap" gap={12} style={{ marginBottom: 16 }}>
      <div>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {title}
        </Typography.Title>
        {subtitle && <Typography.Text type="secondary">{subtitle}</Typography.Text>}
      </div>
      {extra && (
        <Flex gap={8} wrap="wrap">
          {extra}
        </Flex>
      )}
    </Flex>
  );
}
