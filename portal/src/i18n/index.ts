/**
 * i18next over one JSON file per area and language (src/locales/<lng>/<ns>.json), all
 * bundled: the two languages together weigh less than one round trip. Keys are always
 * written in full, `ns:path.to.key`, so tests/portal/test_i18n_keys.py can find them.
 */
import dayjs from "dayjs";
import "dayjs/locale/zh-cn";
import i18n from "i18next";
import { initReactI18next } from "react-i18next";

import type { Locale } from "../api/types";

export const LOCALES: { value: Locale; label: string }[] = [
  { value: "zh-CN", label: "简体中文" },
  { value: "en", label: "English" },
];

const STORAGE_KEY = "tessera.locale";

type Tree = { [key: string]: string | Tree };
const files = import.meta.glob<Tree>("../locales/*/*.json", { eager: true, import: "default" });

const resources: Record<string, Record<string, Tree>> = {};
for (const [file, tree] of Object.entries(files)) {
  const [, lng, ns] = /\.\.\/locales\/([^/]+)\/([^/]+)\.json$/.exec(file) ?? [];
  if (lng && ns) (resources[lng] ??= {})[ns] = tree;
}

export function isLocale(value: unknown): value is Locale {
  return value === "en" || value === "zh-CN";
}

/** The language before anyone logs in: this browser's last choice, else its own. */
function initialLocale(): Locale {
  const stored = localStorage.getItem(STORAGE_KEY);
  if (isLocale(stored)) return stored;
  return navigator.language.toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

function applyLocale(lng: Locale): void {
  dayjs.locale(lng === "zh-CN" ? "zh-cn" : "en");
  document.documentElement.lang = lng;
}

const first = initialLocale();
applyLocale(first);

void i18n.use(initReactI18next).init({
  resources,
  lng: first,
  fallbackLng: "en",
  ns: Object.keys(resources.en ?? {}),
  defaultNS: "common",
  interpolation: { escapeValue: false }, // React escapes what it renders
  returnNull: false,
});

/** Switch the whole UI now (antd and dayjs follow through ConfigProvider and here). */
export async function setLocale(lng: Locale): Promise<void> {
  localStorage.setItem(STORAGE_KEY, lng);
  applyLocale(lng);
  await i18n.changeLanguage(lng);
}

export function currentLocale(): Locale {
  return isLocale(i18n.language) ? i18n.language : "en";
}

export default i18n;
