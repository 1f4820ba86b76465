import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// Static files only: the console's Envoy listener serves dist/ (server/platform/console_door.py).
export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 2000 },
});
