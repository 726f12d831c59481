import "./i18n";

import { StrictMode, Suspense } from "react";
import { createRoot } from "react-dom/client";

import App from "./App";
import { PageLoading } from "./layout/PageLoading";

createRoot(document.getElementById("root") as HTMLElement).render(
  <StrictMode>
    <Suspense fallback={<PageLoading />}>
      <App />
    </Suspense>
  </StrictMode>,
);
