/**
 * An ECharts graph drawn in columns, left to right (external networks, routers,
 * segments, subnets, ports): a fixed layout reads like a network diagram and stays put,
 * where a force layout would move on every load. Its own chart module (the graph
 * series), so the dashboard's chunk does not carry it. SVG, as in components/EChart.
 */
import { GraphChart } from "echarts/charts";
import type { GraphSeriesOption } from "echarts/charts";
import { LegendComponent, TooltipComponent } from "echarts/components";
import type { LegendComponentOption, TooltipComponentOption } from "echarts/components";
import { init, use } from "echarts/core";
import type { ComposeOption, EChartsType } from "echarts/core";
import { SVGRenderer } from "echarts/renderers";
import { useEffect, useMemo, useRef } from "react";

use([GraphChart, LegendComponent, TooltipComponent, SVGRenderer]);

type Option = ComposeOption<GraphSeriesOption | LegendComponentOption | TooltipComponentOption>;

export interface TopoNode {
  id: string;
  label: string;
  /** Index into `categories`; also the node's column. */
  column: number;
  detail?: string;
}

export interface TopoLink {
  source: string;
  target: string;
  label?: string;
}

const COLUMN_GAP = 230;
const ROW_GAP = 64;
const COLORS = ["#722ed1", "#fa8c16", "#1677ff", "#13c2c2", "#52c41a", "#8c8c8c"];

export function TopologyGraph({
  nodes,
  links,
  categories,
  testId,
}: {
  nodes: TopoNode[];
  links: TopoLink[];
  /** A name per column, in the UI's language: the legend. */
  categories: string[];
  testId?: string;
}) {
  const element = useRef<HTMLDivElement>(null);
  const chart = useRef<EChartsType | null>(null);
  const rows = Math.max(1, ...categories.map((_, c) => nodes.filter((n) => n.column === c).length));
  const height = Math.max(320, rows * ROW_GAP + 120);

  const option = useMemo<Option>(() => {
    const placed = categories.flatMap((_, column) => {
      const inColumn = nodes.filter((n) => n.column === column);
      const top = ((Math.max(rows, 3) - inColumn.length) * ROW_GAP) / 2;
      return inColumn.map((n, i) => ({
        id: n.id,
        name: n.label,
        x: column * COLUMN_GAP,
        y: top + i * ROW_GAP,
        category: column,
        value: n.detail ?? "",
        symbolSize: column === 1 ? 34 : 24,
        symbol: column === 1 ? "diamond" : column === 4 ? "rect" : "circle",
      }));
    });
    // Two invisible corners fix the drawing's frame: ECharts fits the nodes' bounding
    // box to the chart, and a single row of nodes has no height to fit.
    const frame = [
      [0, -ROW_GAP],
      [(categories.length - 1) * COLUMN_GAP, Math.max(rows, 3) * ROW_GAP],
    ].map(([x, y], i) => ({
      id: `frame:${i}`,
      name: "",
      x,
      y,
      symbolSize: 0,
      label: { show: false },
      tooltip: { show: false },
      silent: true,
    }));
    return {
      color: COLORS,
      legend: { data: categories, top: 0 },
      tooltip: {
        formatter: (p: unknown) => {
          const item = p as { dataType?: string; data: { name?: string; value?: string; label?: { formatter?: string } } };
          if (item.dataType === "edge") return item.data.label?.formatter ?? "";
          return [item.data.name, item.data.value].filter(Boolean).join("<br/>");
        },
      },
      series: [
        {
          type: "graph",
          layout: "none",
          top: 50,
          bottom: 30,
          left: 110,
          right: 110,
          roam: true,
          categories: categories.map((name) => ({ name })),
          label: { show: true, position: "bottom", fontSize: 12 },
          edgeLabel: { fontSize: 10 },
          lineStyle: { color: "#999", width: 1.5, curveness: 0 },
          data: [...placed, ...frame],
          links: links.map((l) => ({
            source: l.source,
            target: l.target,
            label: { show: Boolean(l.label), formatter: l.label ?? "" },
          })),
        },
      ],
    };
  }, [nodes, links, categories, rows]);

  useEffect(() => {
    if (!element.current) return undefined;
    const instance = init(element.current, undefined, { renderer: "svg" });
    chart.current = instance;
    const resize = new ResizeObserver(() => instance.resize());
    resize.observe(element.current);
    return () => {
      resize.disconnect();
      instance.dispose();
      chart.current = null;
    };
  }, []);

  useEffect(() => {
    chart.current?.setOption(option, { notMerge: true });
  }, [option]);

  return <div ref={element} style={{ width: "100%", height }} data-testid={testId} />;
}
