// A minimal W3C WebDriver client (fetch only), enough to drive the app
// through tauri-driver and WebKitWebDriver.
const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

export class Session {
  constructor(base, id) {
    this.base = base;
    this.id = id;
  }

  static async start(base, application) {
    const r = await call(base, "POST", "/session", {
      capabilities: { alwaysMatch: { browserName: "wry", "tauri:options": { application } } },
    });
    return new Session(base, r.sessionId);
  }

  cmd(method, path, body) {
    return call(this.base, method, `/session/${this.id}${path}`, body);
  }

  async find(css) {
    const r = await this.cmd("POST", "/element", { using: "css selector", value: css });
    return r[ELEMENT];
  }

  async findAll(css) {
    const r = await this.cmd("POST", "/elements", { using: "css selector", value: css });
    return r.map((e) => e[ELEMENT]);
  }

  /** Wait until `css` exists (and, if given, its text passes `test`). */
  async waitFor(css, test = () => true, timeoutMs = 30000) {
    const end = Date.now() + timeoutMs;
    let last = "";
    for (;;) {
      try {
        const el = await this.find(css);
        last = await this.text(el);
        if (test(last)) return el;
      } catch (e) {
        last = String(e.message ?? e);
      }
      if (Date.now() > end) throw new Error(`timed out waiting for ${css}: ${last}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  text(el) {
    return this.cmd("GET", `/element/${el}/text`);
  }

  click(el) {
    return this.cmd("POST", `/element/${el}/click`, {});
  }

  async clear(el) {
    await this.cmd("POST", `/element/${el}/clear`, {});
  }

  type(el, text) {
    return this.cmd("POST", `/element/${el}/value`, { text });
  }

  async fill(css, text) {
    const el = await this.find(css);
    await this.clear(el);
    await this.type(el, text);
  }

  async clickText(css, text) {
    for (const el of await this.findAll(css)) {
      if ((await this.text(el)) === text) return this.click(el);
    }
    throw new Error(`no ${css} with text ${text}`);
  }

  exec(script, args = []) {
    return this.cmd("POST", "/execute/sync", { script, args });
  }

  screenshot() {
    return this.cmd("GET", "/screenshot");
  }

  end() {
    return this.cmd("DELETE", "");
  }
}

async function call(base, method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json.value ?? json)}`);
  return json.value;
}
