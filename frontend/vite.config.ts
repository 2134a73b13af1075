import { defineConfig } from "vite";

// The Python server (`hoichan serve`) for `npm run dev`; the built files are served by it.
const backend = process.env.HOICHAN_DEV_BACKEND ?? "http://127.0.0.1:8080";

export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    assetsDir: "assets",
    target: "es2022",
    // Cornerstone with vtk.js is one large chunk by nature; the room page loads it lazily,
    // so the login and home pages do not wait for it.
    chunkSizeWarningLimit: 4096,
  },
  // The DICOM image loader starts its decoders in module workers and loads the WASM codecs
  // with `new URL(..., import.meta.url)`: the workers must be ES modules and the loader must
  // not be pre-bundled by the dev server (Cornerstone3D's documented Vite setup).
  worker: { format: "es" },
  optimizeDeps: {
    exclude: [
      "@cornerstonejs/dicom-image-loader",
      "@cornerstonejs/codec-charls",
      "@cornerstonejs/codec-libjpeg-turbo-8bit",
      "@cornerstonejs/codec-libjxl",
      "@cornerstonejs/codec-openjpeg",
      "@cornerstonejs/codec-openjph",
    ],
    include: ["dicom-parser"],
  },
  server: {
    proxy: {
      "/api": backend,
      "/dicomweb": backend,
      "/healthz": backend,
      "/socket.io": { target: backend, ws: true },
    },
  },
});
