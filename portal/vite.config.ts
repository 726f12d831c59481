import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The API serves the built app (portal/dist) from its own origin. `npm run dev` serves
// the sources with hot reload and forwards the API's paths to a running `tessera serve`.
const api = process.env.TESSERA_API_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
    rollupOptions: {
      output: {
        // Libraries change less often than the app: one file of them stays cached (assets
        // are served as immutable) across portal releases. ECharts stays with the pages
        // that draw charts, so the VM list does not wait for it.
        manualChunks(id) {
          if (id.includes("node_modules") && !/node_modules\/(echarts|zrender)\//.test(id)) {
            return "vendor";
          }
          return undefined;
        },
      },
    },
  },
  server: {
    proxy: { "/v1": api, "/healthz": api },
  },
});
