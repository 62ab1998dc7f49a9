import { listen } from "@tauri-apps/api/event";
import { api } from "./api";
import { App, type View } from "./app";

const root = document.getElementById("app")!;
const app = new App(api, root);
void app.start();
// The tray menu asks for a view ("share", "settings", "unlock"…).
void listen<View>("navigate", (e) => void app.go(e.payload));
// The engine's state changed (the tray loop noticed).
void listen("status-changed", () => void app.refresh());
