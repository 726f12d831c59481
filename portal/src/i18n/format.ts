/**
 * Dates, numbers and sizes formatted for the UI's language with the browser's Intl:
 * `const f = useFormat(); f.bytes(vm.size)`. Components re-render on a language switch
 * because useFormat reads it through useTranslation.
 */
import { useMemo } from "react";
import { useTranslation } from "react-i18next";

const BINARY_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

export interface Formatters {
  number: (value: number, digits?: number) => string;
  percent: (fraction: number) => string;
  bytes: (value: number | null | undefined) => string;
  mib: (value: number | null | undefined) => string;
  dateTime: (iso: string | null | undefined) => string;
  date: (iso: string | null | undefined) => string;
  /** "5 minutes ago" from a number of seconds in the past. */
  ago: (seconds: number | null | undefined) => string;
  /** "5 minutes ago" from a time. */
  since: (iso: string | null | undefined) => string;
  duration: (seconds: number | null | undefined) => string;
}

export function formatters(locale: string): Formatters {
  const numbers = new Map<number, Intl.NumberFormat>();
  const number = (value: number, digits = 0) => {
    let fmt = numbers.get(digits);
    if (!fmt) {
      fmt = new Intl.NumberFormat(locale, { maximumFractionDigits: digits });
      numbers.set(digits, fmt);
    }
    return fmt.format(value);
  };
  const dateTimeFmt = new Intl.DateTimeFormat(locale, {
    dateStyle: "medium",
    timeStyle: "medium",
  });
  const dateFmt = new Intl.DateTimeFormat(locale, { dateStyle: "medium" });
  const relative = new Intl.RelativeTimeFormat(locale, { numeric: "auto" });
  const percentFmt = new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 1 });

  const bytes = (value: number | null | undefined) => {
    if (value === null || value === undefined) return "—";
    let unit = 0;
    let scaled = value;
    while (Math.abs(scaled) >= 1024 && unit < BINARY_UNITS.length - 1) {
      scaled /= 1024;
      unit += 1;
    }
    return `${number(scaled, unit === 0 ? 0 : scaled < 10 ? 2 : 1)} ${BINARY_UNITS[unit]}`;
  };

  const ago = (seconds: number | null | undefined) => {
    if (seconds === null || seconds === undefined) return "—";
    const s = Math.max(0, seconds);
    if (s < 60) return relative.format(-Math.round(s), "second");
    if (s < 3600) return relative.format(-Math.round(s / 60), "minute");
    if (s < 86400) return relative.format(-Math.round(s / 3600), "hour");
    return relative.format(-Math.round(s / 86400), "day");
  };

  const duration = (seconds: number | null | undefined) => {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 60) return `${number(seconds, 1)} s`;
    const minutes = Math.floor(seconds / 60);
    return `${number(minutes)} min ${number(Math.round(seconds % 60))} s`;
  };

  return {
    number,
    percent: (fraction) => percentFmt.format(fraction),
    bytes,
    mib: (value) => (value === null || value === undefined ? "—" : bytes(value * 1024 * 1024)),
    dateTime: (iso) => (iso ? dateTimeFmt.format(new Date(iso)) : "—"),
    date: (iso) => (iso ? dateFmt.format(new Date(iso)) : "—"),
    ago,
    since: (iso) => (iso ? ago((Date.now() - new Date(iso).getTime()) / 1000) : "—"),
    duration,
  };
}

export function useFormat(): Formatters {
  const { i18n } = useTranslation();
  return useMemo(() => formatters(i18n.language), [i18n.language]);
}
