/**
 * Keyset paging (the API's `cursor`/`next_cursor`): previous and next, no page count, as
 * counting 50,000 rows on every page would cost more than the page itself.
 */
import { LeftOutlined, RightOutlined } from "@ant-design/icons";
import { Button, Flex, Select, Typography } from "antd";
import { useTranslation } from "react-i18next";

export const PAGE_SIZES = [20, 50, 100, 200];

export interface CursorState {
  /** Cursors of the pages before the current one: [null, c1, c2, ...]. */
  stack: (string | null)[];
  size: number;
}

export function firstPage(size = 50): CursorState {
  return { stack: [null], size };
}

export function currentCursor(state: CursorState): string | null {
  return state.stack[state.stack.length - 1];
}

export function CursorPager({
  state,
  nextCursor,
  onChange,
  loading,
  shown,
}: {
  state: CursorState;
  nextCursor: string | null;
  onChange: (state: CursorState) => void;
  loading?: boolean;
  shown: number;
}) {
  const { t } = useTranslation();
  const page = state.stack.length;
  return (
    <Flex justify="flex-end" align="center" gap={8} style={{ marginTop: 12 }}>
      <Typography.Text type="secondary">{t("common:pager.page", { page, shown })}</Typography.Text>
      <Button
        icon={<LeftOutlined />}
        disabled={page <= 1 || loading}
        onClick={() => onChange({ ...state, stack: state.stack.slice(0, -1) })}
        aria-label={t("common:pager.previous")}
      />
      <Button
        icon={<RightOutlined />}
        disabled={!nextCursor || loading}
        onClick={() => onChange({ ...state, stack: [...state.stack, nextCursor] })}
        aria-label={t("common:pager.next")}
        data-testid="pager-next"
      />
      <Select
        value={state.size}
        style={{ width: 120 }}
        onChange={(size) => onChange(firstPage(size))}
        options={PAGE_SIZES.map((size) => ({ value: size, label: t("common:pager.size", { size }) }))}
      />
    </Flex>
  );
}
