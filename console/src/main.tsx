import "@mantine/core/styles.css";
import { createTheme, MantineProvider } from "@mantine/core";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";

// Shade 9 of the primary colour: white text on it and it on white both pass WCAG AA
// (axe's color-contrast rule; the default shade 6 does not).
const theme = createTheme({ primaryColor: "blue", primaryShade: 9 });

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <MantineProvider theme={theme} defaultColorScheme="light">
      <App />
    </MantineProvider>
  </StrictMode>,
);
