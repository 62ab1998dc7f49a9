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
// Activity and counts change without a tray state change (a file synced
// while already up to date): refresh the status window every 2 s as well.
setInterval(() => void app.refresh(), 2000);
