// The Tributary console: a client of the HTTP API (the same routes README documents).
// No framework and no build step: the Rust `console` crate embeds this file as it is.
// The session lives in sessionStorage (gone with the tab), never in a URL or a cookie.
// Everything shown from the API goes through textContent, never innerHTML.

const SESSION_KEY = "tributary.session";
const CRAWLS_KEY = "tributary.crawls";
const SCOPES = [
  "profile:read", "tokens:read", "tokens:write", "connectors:read",
  "connectors:write", "crawls:read", "crawls:write",
];
const CREDENTIAL_LABELS = {
  basic: "Email and API token",
  bearer: "Bearer token",
  connection: "Provider connection",
  service_account: "Service account key",
  client_credentials: "App client credentials",
};
const OAUTH_RETURN = "/#/signin/complete";

// ---------- DOM helpers ----------

function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      element.className = value;
    } else if (key === "dataset") {
      Object.assign(element.dataset, value);
    } else if (value === true) {
      element.setAttribute(key, "");
    } else {
      element.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

let nextId = 0;
const uid = (prefix) => `${prefix}-${++nextId}`;

/** A labelled control with a hint and an error slot, wired with aria-describedby. */
function field(label, control, { hint, name, required } = {}) {
  control.id = control.id || uid("field");
  const hintElement = hint ? h("p", { class: "hint", id: `${control.id}-hint` }, hint) : null;
  const error = h("p", { class: "field-error", id: `${control.id}-error`, "aria-live": "polite" });
  control.setAttribute(
    "aria-describedby",
    [hintElement && hintElement.id, error.id].filter(Boolean).join(" "),
  );
  if (required) control.setAttribute("aria-required", "true");
  const labelElement = h("label", { for: control.id, class: required ? "required" : null }, label);
  const isCheck = control.type === "checkbox";
  const wrapper = h(
    "div",
    { class: isCheck ? "field check" : "field", dataset: { field: name || "" } },
    isCheck ? [control, labelElement] : [labelElement, control],
    hintElement,
    error,
  );
  wrapper.control = control;
  wrapper.error = error;
  return wrapper;
}

function setFieldError(wrapper, message) {
  wrapper.error.textContent = message || "";
  if (message) wrapper.control.setAttribute("aria-invalid", "true");
  else wrapper.control.removeAttribute("aria-invalid");
}

function clearErrors(root) {
  root.querySelectorAll(".field-error, .form-error").forEach((node) => { node.textContent = ""; });
  root.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
}

const formError = () => h("p", { class: "form-error", role: "alert" });

function showError(slot, error) {
  slot.textContent = describe(error);
}

function describe(error) {
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  return String(error && error.message ? error.message : error);
}

function notice(text, kind = "ok") {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

function input(attrs = {}) {
  return h("input", { type: "text", ...attrs });
}

function textarea(value = "", attrs = {}) {
  const element = h("textarea", attrs);
  element.value = value;
  return element;
}

function select(options, selected, attrs = {}) {
  const element = h("select", attrs, options.map(([value, label]) =>
    h("option", { value, selected: value === selected }, label)));
  return element;
}

function button(text, onclick, attrs = {}) {
  return h("button", { type: "button", onclick, ...attrs }, text);
}

/** Runs `work` with the button disabled, so a double click cannot send twice. */
async function busy(control, work) {
  control.disabled = true;
  control.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    control.disabled = false;
    control.removeAttribute("aria-busy");
  }
}

function table(headers, rows) {
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, headers.map((header) => h("th", { scope: "col" }, header)))),
    h("tbody", {}, rows)));
}

function statusBadge(status) {
  return h("span", { class: `status status-${status}` }, status.replace(/_/g, " "));
}

const when = (value) => (value ? new Date(value).toLocaleString() : "—");
const title = (name) => name.charAt(0).toUpperCase() + name.slice(1);

function duration(run) {
  if (!run.finished_at) return "—";
  const seconds = (new Date(run.finished_at) - new Date(run.started_at)) / 1000;
  return seconds < 60 ? `${seconds.toFixed(1)} s` : `${(seconds / 60).toFixed(1)} min`;
}

// ---------- session and API ----------

const session = {
  read() {
    try { return JSON.parse(sessionStorage.getItem(SESSION_KEY)); } catch { return null; }
  },
  token() {
    const current = this.read();
    if (!current) return null;
    if (current.expires_at && Date.now() > current.expires_at) { this.clear(); return null; }
    return current.access_token;
  },
  save(body) {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify({
      access_token: body.access_token,
      expires_at: Date.now() + (body.expires_in || 3600) * 1000,
      user: body.user,
    }));
  },
  clear() { sessionStorage.removeItem(SESSION_KEY); },
};

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { accept: "application/json" };
  const token = session.token();
  if (token) headers.authorization = `Bearer ${token}`;
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, "network_error", `the API could not be reached: ${error.message}`);
  }
  const text = await response.text();
  let data = null;
  if (text) { try { data = JSON.parse(text); } catch { data = null; } }
  if (!response.ok) {
    const code = (data && data.code) || `http_${response.status}`;
    const message = (data && data.message) || `${response.status} ${response.statusText}`;
    if (response.status === 401 && token) {
      session.clear();
      flash = { text: "Your session has ended; sign in again.", kind: "error" };
      location.hash = "#/signin";
    }
    throw new ApiError(response.status, code, message);
  }
  return data;
}

/** Every page of a `{items, next}` listing. */
async function listAll(path) {
  const items = [];
  let cursor = null;
  do {
    const separator = path.includes("?") ? "&" : "?";
    const page = await api("GET", cursor ? `${path}${separator}cursor=${encodeURIComponent(cursor)}` : path);
    items.push(...(page.items || []));
    cursor = page.next || null;
  } while (cursor && items.length < 1000);
  return items;
}

// ---------- routing ----------

let flash = null;
let pageTimers = [];

function every(milliseconds, work) {
  const timer = setInterval(work, milliseconds);
  pageTimers.push(timer);
  return timer;
}

const routes = [
  [/^#\/signin\/complete$/, completeOAuthSignIn, true],
  [/^#\/signin$/, pageSignIn, true],
  [/^#\/register$/, pageRegister, true],
  [/^#\/connectors$/, pageConnectors],
  [/^#\/connectors\/new$/, (main) => pageConnectorForm(main, null)],
  [/^#\/connectors\/([^/]+)\/edit$/, pageConnectorForm],
  [/^#\/connectors\/([^/]+)$/, pageConnector],
  [/^#\/connections$/, pageConnections],
  [/^#\/crawls$/, pageCrawls],
  [/^#\/crawls\/([^/]+)$/, pageCrawl],
  [/^#\/scrape$/, pageScrape],
  [/^#\/tokens$/, pageTokens],
];

async function render() {
  pageTimers.forEach(clearInterval);
  pageTimers = [];
  const signedIn = Boolean(session.token());
  const hash = location.hash || "";
  const match = routes.find(([pattern]) => pattern.test(hash));
  if (!match) {
    location.replace(signedIn ? "#/connectors" : "#/signin");
    return;
  }
  const [pattern, page, isPublic] = match;
  if (!isPublic && !signedIn) {
    location.replace("#/signin");
    return;
  }
  if ((hash === "#/signin" || hash === "#/register") && signedIn) {
    location.replace("#/connectors");
    return;
  }
  updateNav(signedIn, hash);
  const main = document.getElementById("main");
  main.replaceChildren();
  if (flash) {
    main.append(notice(flash.text, flash.kind));
    flash = null;
  }
  const params = hash.match(pattern).slice(1).map(decodeURIComponent);
  try {
    await page(main, ...params);
  } catch (error) {
    main.append(notice(describe(error), "error"));
  }
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus();
    document.title = `${heading.textContent} · Tributary`;
  }
}

function updateNav(signedIn, hash) {
  const nav = document.getElementById("nav");
  nav.hidden = !signedIn;
  const current = session.read();
  document.getElementById("whoami").textContent =
    signedIn && current && current.user ? current.user.email || current.user.name || "" : "";
  nav.querySelectorAll("a[href^='#/']").forEach((link) => {
    const active = hash.startsWith(link.getAttribute("href"));
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  });
}

async function signOut() {
  try { await api("POST", "/auth/logout", {}); } catch { /* the session is dropped either way */ }
  session.clear();
  flash = { text: "Signed out.", kind: "ok" };
  location.hash = "#/signin";
}

// ---------- sign in, register ----------

async function pageSignIn(main) {
  const query = new URLSearchParams(location.search);
  const signinError = query.get("signin_error");
  if (signinError) {
    history.replaceState(null, "", `/${location.hash}`);
    main.append(notice(`Sign-in with the provider failed (${signinError}).`, "error"));
  }
  const email = field("Email", input({ type: "email", autocomplete: "username", name: "email" }), { name: "email", required: true });
  const password = field("Password", input({ type: "password", autocomplete: "current-password", name: "password" }), { name: "password", required: true });
  const error = formError();
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h("form", { "aria-labelledby": "signin-title", novalidate: true }, email, password, error,
    h("div", { class: "actions" }, submit, h("a", { href: "#/register" }, "Create an account")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    await busy(submit, async () => {
      try {
        const body = await api("POST", "/auth/login", {
          email: email.control.value, password: password.control.value,
        });
        session.save(body);
        location.hash = "#/connectors";
      } catch (failure) {
        const target = failure.code === "invalid_email" ? email : null;
        if (target) setFieldError(target, describe(failure));
        else showError(error, failure);
      }
    });
  });
  main.append(h("h1", { id: "signin-title" }, "Sign in"), form);
  const providers = await api("GET", "/auth/providers").catch(() => ({ items: [] }));
  if (providers.items.length) {
    main.append(h("section", { class: "panel", "aria-labelledby": "providers-title" },
      h("h2", { id: "providers-title" }, "Or sign in with"),
      h("div", { class: "actions" }, providers.items.map((provider) =>
        button(`Sign in with ${provider.display_name || title(provider.name)}`, () => {
          const target = `${provider.login_url}?redirect_to=${encodeURIComponent(OAUTH_RETURN)}`;
          location.assign(target);
        }, { class: "secondary" })))));
  }
}

async function completeOAuthSignIn(main) {
  main.append(h("h1", {}, "Signing in…"));
  try {
    const body = await api("POST", "/auth/session", {});
    session.save(body);
    location.replace("#/connectors");
  } catch (error) {
    flash = { text: `Sign-in did not complete: ${describe(error)}`, kind: "error" };
    location.replace("#/signin");
  }
}

async function pageRegister(main) {
  const name = field("Name", input({ autocomplete: "name", name: "name" }), { name: "name", required: true });
  const email = field("Email", input({ type: "email", autocomplete: "email", name: "email" }), { name: "email", required: true });
  const password = field("Password", input({ type: "password", autocomplete: "new-password", name: "password" }), {
    name: "password", required: true, hint: "Long and hard to guess: a few unrelated words work well.",
  });
  const error = formError();
  const submit = h("button", { type: "submit" }, "Create account");
  const form = h("form", { novalidate: true }, name, email, password, error,
    h("div", { class: "actions" }, submit, h("a", { href: "#/signin" }, "I have an account")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    await busy(submit, async () => {
      const credentials = { email: email.control.value, password: password.control.value };
      try {
        await api("POST", "/auth/register", { ...credentials, name: name.control.value });
        session.save(await api("POST", "/auth/login", credentials));
        location.hash = "#/connectors";
      } catch (failure) {
        const byCode = { invalid_email: email, email_taken: email, weak_password: password, invalid_name: name };
        const target = byCode[failure.code] || fieldNamed([name, email, password], failure.message);
        if (target) setFieldError(target, describe(failure));
        else showError(error, failure);
      }
    });
  });
  main.append(h("h1", {}, "Create an account"), form);
}

function fieldNamed(wrappers, message) {
  return wrappers.find((wrapper) => wrapper.dataset.field && message.includes(wrapper.dataset.field)) || null;
}

// ---------- API tokens ----------

async function pageTokens(main) {
  const name = field("Token name", input({ name: "name" }), { name: "name", required: true });
  const scopeBoxes = SCOPES.map((scope) => field(scope, h("input", { type: "checkbox", value: scope, checked: scope.endsWith(":read") })));
  const scopes = h("fieldset", {}, h("legend", {}, "Scopes"), scopeBoxes);
  const expiry = field("Expires in", select([
    ["86400", "1 day"], ["2592000", "30 days"], ["7776000", "90 days"], ["31622400", "366 days"],
  ], "7776000"), { name: "expires_in" });
  const error = formError();
  const created = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, "Create token");
  const form = h("form", { novalidate: true, "aria-labelledby": "new-token" },
    h("h2", { id: "new-token" }, "New API token"), name, scopes, expiry, error,
    h("div", { class: "actions" }, submit));
  const list = h("div");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    await busy(submit, async () => {
      try {
        const token = await api("POST", "/api-tokens", {
          name: name.control.value,
          scopes: scopeBoxes.filter((box) => box.control.checked).map((box) => box.control.value),
          expires_in: Number(expiry.control.value),
        });
        created.replaceChildren(shownOnce(token));
        name.control.value = "";
        await refreshTokens(list);
      } catch (failure) {
        if (failure.code === "invalid_scopes") showError(error, failure);
        else if (/name/.test(failure.message)) setFieldError(name, describe(failure));
        else showError(error, failure);
      }
    });
  });
  main.append(h("h1", {}, "API tokens"), form, created, h("h2", {}, "Your tokens"), list);
  await refreshTokens(list);
}

function shownOnce(token) {
  const value = input({ readonly: true, value: token.token, class: "secret" });
  const status = h("span", { role: "status" });
  const copy = button("Copy token", async () => {
    value.select();
    try {
      await navigator.clipboard.writeText(token.token);
      status.textContent = "Copied.";
    } catch {
      status.textContent = "Select the token and copy it by hand.";
    }
  });
  return h("div", { class: "panel" },
    h("p", {}, h("strong", {}, `Token “${token.name}” created. Copy it now: it is shown only once.`)),
    field("New API token", value), h("div", { class: "actions" }, copy, status));
}

async function refreshTokens(list) {
  const tokens = await listAll("/api-tokens?limit=100");
  if (!tokens.length) {
    list.replaceChildren(h("p", {}, "No API tokens yet."));
    return;
  }
  const error = formError();
  list.replaceChildren(error, table(["Name", "Scopes", "Created", "Last used", "Expires", ""],
    tokens.map((token) => h("tr", {},
      h("td", {}, token.name), h("td", {}, token.scopes.join(", ")), h("td", {}, when(token.created_at)),
      h("td", {}, when(token.last_used_at)), h("td", {}, when(token.expires_at)),
      h("td", {}, button("Revoke", async (event) => {
        if (!confirm(`Revoke the token “${token.name}”? Anything using it stops working.`)) return;
        await busy(event.currentTarget, async () => {
          try {
            await api("DELETE", `/api-tokens/${encodeURIComponent(token.id)}`);
            await refreshTokens(list);
          } catch (failure) { showError(error, failure); }
        });
      }, { class: "danger", "aria-label": `Revoke ${token.name}` }))))));
}

// ---------- provider connections ----------

async function pageConnections(main) {
  main.append(h("h1", {}, "Connections"),
    h("p", { class: "hint" }, "A workspace connects once to a provider; connectors then use the connection instead of a pasted token."));
  const cards = h("div", { class: "cards" });
  main.append(cards);
  await refreshConnections(cards);
}

async function refreshConnections(cards) {
  const listing = await api("GET", "/integrations");
  const byProvider = new Map((listing.items || []).map((item) => [item.provider, item]));
  const providers = listing.providers || [];
  if (!providers.length && !byProvider.size) {
    cards.replaceChildren(h("p", {}, "No provider is configured. Set TRIBUTARY_INTEGRATIONS to add some (see README)."));
    return;
  }
  const names = [...new Set([...providers.map((provider) => provider.name), ...byProvider.keys()])].sort();
  cards.replaceChildren(...names.map((name) => connectionCard(name, byProvider.get(name), cards)));
}

function connectionCard(name, connection, cards) {
  const error = formError();
  const connect = async (event) => {
    await busy(event.currentTarget, async () => {
      try {
        const started = await api("GET", `/integrations/${encodeURIComponent(name)}/login?redirect_to=${encodeURIComponent("/#/connections")}`);
        location.assign(started.authorize_url);
      } catch (failure) { showError(error, failure); }
    });
  };
  const disconnect = async (event) => {
    if (!confirm(`Disconnect ${title(name)}? Connectors using it stop syncing until it is connected again.`)) return;
    await busy(event.currentTarget, async () => {
      try {
        await api("DELETE", `/integrations/${encodeURIComponent(name)}`);
        await refreshConnections(cards);
      } catch (failure) { showError(error, failure); }
    });
  };
  const status = connection ? connection.status : "not_connected";
  const actions = [];
  if (!connection) actions.push(button(`Connect ${title(name)}`, connect));
  else if (status !== "active") actions.push(button(`Reconnect ${title(name)}`, connect));
  if (connection) actions.push(button(`Disconnect ${title(name)}`, disconnect, { class: "danger" }));
  const details = connection ? h("dl", { class: "meta" },
    h("dt", {}, "Account"), h("dd", {}, connection.account || "—"),
    h("dt", {}, "Scopes"), h("dd", {}, (connection.scopes || []).join(" ") || "—"),
    h("dt", {}, "Token expires"), h("dd", {}, when(connection.expires_at)),
    h("dt", {}, "Last refresh"), h("dd", {}, when(connection.last_refresh_at)),
    connection.last_error ? [h("dt", {}, "Last error"), h("dd", {}, connection.last_error)] : null) : null;
  return h("section", { class: "card", "aria-label": title(name) },
    h("h2", {}, title(name)), h("p", {}, statusBadge(status)), details, error,
    h("div", { class: "actions" }, actions));
}

// ---------- connectors ----------

async function pageConnectors(main) {
  main.append(h("h1", {}, "Connectors"),
    h("div", { class: "actions" }, h("a", { class: "button", href: "#/connectors/new" }, "New connector")));
  const connectors = await listAll("/connectors?limit=100");
  if (!connectors.length) {
    main.append(h("p", {}, "No connectors yet. A connector syncs a source (Jira, Confluence, Google Drive, …) into a sink."));
    return;
  }
  const lastRuns = await Promise.all(connectors.map((connector) =>
    api("GET", `/connectors/${encodeURIComponent(connector.id)}/runs?limit=1`)
      .then((runs) => (runs.items || [])[0] || null).catch(() => null)));
  main.append(table(["Name", "Source", "Status", "Schedule", "Last run"], connectors.map((connector, index) => {
    const run = lastRuns[index];
    return h("tr", {},
      h("td", {}, h("a", { href: `#/connectors/${encodeURIComponent(connector.id)}` }, connector.name)),
      h("td", {}, connector.source),
      h("td", {}, run ? statusBadge(run.status) : "never run"),
      h("td", {}, connector.schedule_minutes ? `every ${connector.schedule_minutes} min` : "manual"),
      h("td", {}, run ? `${countsText(run.counts)} · ${duration(run)}` : "—"));
  })));
}

function countsText(counts = {}) {
  return ["added", "updated", "deleted", "failed"].map((key) => `${counts[key] || 0} ${key}`).join(", ");
}

async function pageConnector(main, id) {
  const connector = await api("GET", `/connectors/${encodeURIComponent(id)}`);
  const error = formError();
  const message = h("div", { "aria-live": "polite" });
  const runs = h("div");
  const syncNow = button("Sync now", async (event) => {
    await busy(event.currentTarget, async () => {
      try {
        await api("POST", `/connectors/${encodeURIComponent(id)}/sync`, {});
        message.replaceChildren(notice("Sync queued."));
        await refreshRuns(runs, id);
      } catch (failure) { showError(error, failure); }
    });
  });
  const remove = button("Delete connector", async (event) => {
    if (!confirm(`Delete “${connector.name}” and its sync state? Documents already in the sink stay there.`)) return;
    await busy(event.currentTarget, async () => {
      try {
        await api("DELETE", `/connectors/${encodeURIComponent(id)}`);
        location.hash = "#/connectors";
      } catch (failure) { showError(error, failure); }
    });
  }, { class: "danger" });
  main.append(h("h1", {}, connector.name),
    h("dl", { class: "meta" },
      h("dt", {}, "Source"), h("dd", {}, connector.source),
      h("dt", {}, "Sink"), h("dd", {}, sinkText(connector.sink)),
      h("dt", {}, "Schedule"), h("dd", {}, connector.schedule_minutes ? `every ${connector.schedule_minutes} minutes` : "manual only"),
      h("dt", {}, "Webhook"), h("dd", {}, connector.webhook ? `${connector.webhook.scheme}: POST ${connector.webhook.url}` : "none"),
      h("dt", {}, "Created"), h("dd", {}, when(connector.created_at))),
    h("div", { class: "actions" }, syncNow,
      h("a", { class: "button secondary", href: `#/connectors/${encodeURIComponent(id)}/edit` }, "Edit"), remove),
    error, message, h("h2", {}, "Runs"), runs);
  await refreshRuns(runs, id);
  every(2000, () => refreshRuns(runs, id).catch(() => {}));
}

function sinkText(sink) {
  if (!sink) return "—";
  if (sink.type === "directory") return `directory ${sink.path}`;
  if (sink.type === "ragflow") return `RAGFlow ${sink.base_url} dataset ${sink.dataset_id}`;
  if (sink.type === "webhook") return `webhook ${sink.url}`;
  return sink.type;
}

async function refreshRuns(container, id) {
  const listing = await api("GET", `/connectors/${encodeURIComponent(id)}/runs?limit=20`);
  const items = listing.items || [];
  if (!items.length) {
    container.replaceChildren(h("p", {}, "No runs yet."));
    return;
  }
  const counts = (run, key) => h("td", {}, String((run.counts || {})[key] || 0));
  container.replaceChildren(table(
    ["Started", "Trigger", "Status", "Added", "Updated", "Deleted", "Failed", "Duration", "Errors"],
    items.map((run) => h("tr", {},
      h("td", {}, when(run.started_at)), h("td", {}, run.trigger), h("td", {}, statusBadge(run.status)),
      counts(run, "added"), counts(run, "updated"), counts(run, "deleted"), counts(run, "failed"),
      h("td", {}, duration(run)),
      h("td", {}, run.errors && run.errors.length
        ? h("ul", { class: "errors" }, run.errors.map((text) => h("li", {}, text))) : "—")))));
}

// ---------- the connector form, generated from the source's JSON Schema ----------

async function pageConnectorForm(main, id) {
  const [sources, existing, connections] = await Promise.all([
    api("GET", "/sources"),
    id ? api("GET", `/connectors/${encodeURIComponent(id)}`) : Promise.resolve(null),
    api("GET", "/integrations").catch(() => ({ items: [], providers: [] })),
  ]);
  const bySource = new Map(sources.items.map((source) => [source.source, source]));
  main.append(h("h1", {}, existing ? `Edit ${existing.name}` : "New connector"));
  const name = field("Name", input({ name: "name", value: existing ? existing.name : "" }), { name: "name", required: true });
  const sourcePicker = field("Source", select(
    sources.items.map((source) => [source.source, source.title]),
    existing ? existing.source : sources.items[0] && sources.items[0].source,
    { disabled: Boolean(existing) }), { name: "source" });
  const configBox = h("fieldset", {}, h("legend", {}, "Configuration"));
  const credentialsBox = h("fieldset", {}, h("legend", {}, "Credentials"));
  const sinkBox = h("fieldset", {}, h("legend", {}, "Sink"));
  const schedule = field("Sync every (minutes)", input({
    name: "schedule_minutes", inputmode: "numeric",
    value: existing && existing.schedule_minutes ? existing.schedule_minutes : "",
  }), { name: "schedule_minutes", hint: "Empty: only manual syncs and webhooks." });
  const error = formError();
  const tested = h("div", { "aria-live": "polite" });
  const save = h("button", { type: "submit" }, existing ? "Save changes" : "Create connector");
  const test = button("Test connection", null, { class: "secondary" });
  const form = h("form", { novalidate: true }, name, sourcePicker, configBox, credentialsBox, sinkBox, schedule,
    error, tested, h("div", { class: "actions" }, test, save));
  main.append(form);

  let config = null;
  let credentials = null;
  let sink = null;
  const build = () => {
    const source = bySource.get(sourcePicker.control.value);
    config = schemaForm(source.config_schema, existing ? existing.config : undefined);
    configBox.replaceChildren(h("legend", {}, `${source.title} configuration`), config.element);
    credentials = credentialsForm(source, connections, Boolean(existing));
    credentialsBox.replaceChildren(h("legend", {}, "Credentials"), credentials.element);
  };
  sink = sinkForm(existing ? existing.sink : null, Boolean(existing));
  sinkBox.append(sink.element);
  sourcePicker.control.addEventListener("change", build);
  build();

  // An edit sends the config only when it was touched: a changed config restarts the sync
  // from scratch, which a rename must not do.
  let configTouched = !existing;
  const touched = () => { configTouched = true; };
  configBox.addEventListener("input", touched);
  configBox.addEventListener("change", touched);
  const body = () => {
    const payload = { name: name.control.value };
    if (configTouched) payload.config = config.value();
    const creds = credentials.value();
    if (creds) payload.credentials = creds;
    const sinkValue = sink.value();
    if (sinkValue) payload.sink = sinkValue;
    const minutes = schedule.control.value.trim();
    if (minutes) payload.schedule_minutes = numberOrText(minutes);
    else if (existing && existing.schedule_minutes) payload.schedule_minutes = null;
    if (!existing) payload.source = sourcePicker.control.value;
    return payload;
  };
  const fail = (failure) => {
    const wrappers = [name, schedule, ...config.fields, ...credentials.fields, ...sink.fields];
    const target = fieldForError(failure, { name, schedule, config, credentials, sink }, wrappers);
    if (target) {
      setFieldError(target, describe(failure));
      target.control.focus();
    }
    showError(error, failure);
  };
  test.addEventListener("click", async () => {
    clearErrors(form);
    tested.replaceChildren();
    await busy(test, async () => {
      try {
        const path = existing ? `/connectors/${encodeURIComponent(existing.id)}/test` : "/connectors/test";
        const answer = await api("POST", path, body());
        tested.replaceChildren(notice(answer.message || "The connection works."));
      } catch (failure) { fail(failure); }
    });
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    await busy(save, async () => {
      try {
        const saved = existing
          ? await api("PATCH", `/connectors/${encodeURIComponent(existing.id)}`, body())
          : await api("POST", "/connectors", body());
        location.hash = `#/connectors/${encodeURIComponent(saved.id)}`;
      } catch (failure) { fail(failure); }
    });
  });
}

/** The field an API error is about: by its code, or a field name quoted in its message. */
function fieldForError(failure, parts, wrappers) {
  const message = failure.message || "";
  const quoted = message.match(/(?:missing|unknown) field `([^`]+)`/)
    || message.match(/^(?:invalid configuration: )?`?([a-z_][a-z0-9_.[\]]*)`?: /);
  if (failure.code === "invalid_config" && quoted) {
    const key = quoted[1].split(/[.[]/)[0];
    const hit = parts.config.fields.find((wrapper) => wrapper.dataset.field === key);
    if (hit) return hit;
  }
  if (failure.code === "invalid_schedule") return parts.schedule;
  if (/^(invalid_credentials|credentials_kind_not_accepted|connection_provider_not_accepted|credentials_required)$/.test(failure.code)) {
    return parts.credentials.fields[0] || null;
  }
  if (/^(invalid_sink|sink_credentials_required)$/.test(failure.code)) return parts.sink.fields[0] || null;
  if (/name/.test(message) && failure.code === "invalid_body") return parts.name;
  return fieldNamed(wrappers.filter((wrapper) => wrapper.dataset.field), message);
}

function numberOrText(raw) {
  const trimmed = raw.trim();
  return /^-?\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : trimmed;
}

function resolve(schema, root) {
  let current = schema || {};
  for (let depth = 0; current.$ref && depth < 8; depth += 1) {
    const path = current.$ref.replace(/^#\//, "").split("/");
    current = path.reduce((node, key) => (node ? node[key] : undefined), root) || {};
  }
  return current;
}

/** The non-null branch of `T | null` as schemars writes it (a type list, anyOf or oneOf). */
function shapeOf(schema, root) {
  let node = resolve(schema, root);
  const union = node.anyOf || node.oneOf;
  if (union && union.length === 2 && union.some((branch) => branch.type === "null")) {
    node = { ...resolve(union.find((branch) => branch.type !== "null"), root), description: node.description, default: node.default };
  }
  let type = node.type;
  if (Array.isArray(type)) type = type.find((entry) => entry !== "null");
  const choices = node.enum
    || ((node.oneOf || node.anyOf) && (node.oneOf || node.anyOf).every((branch) => "const" in branch)
      ? (node.oneOf || node.anyOf).map((branch) => branch.const) : null);
  return { node, type, choices: choices && choices.filter((choice) => choice !== null) };
}

/** A form for a JSON Schema object: one labelled control per property. */
function schemaForm(schema, initial) {
  const root = schema;
  const object = resolve(schema, root);
  const required = new Set(object.required || []);
  const fields = [];
  const readers = [];
  for (const [key, property] of Object.entries(object.properties || {})) {
    const { node, type, choices } = shapeOf(property, root);
    const start = initial && key in initial ? initial[key] : node.default;
    const label = title(key.replace(/_/g, " "));
    const hint = node.description || property.description;
    const options = { name: key, required: required.has(key), hint };
    let wrapper;
    let read;
    if (choices && choices.length) {
      const optional = !required.has(key);
      wrapper = field(label, select([...(optional ? [["", "(default)"]] : []), ...choices.map((choice) => [String(choice), String(choice)])],
        start === undefined || start === null ? "" : String(start), { name: key }), options);
      read = () => wrapper.control.value || undefined;
    } else if (type === "boolean") {
      wrapper = field(label, h("input", { type: "checkbox", name: key, checked: Boolean(start) }), options);
      read = () => wrapper.control.checked;
    } else if (type === "integer" || type === "number") {
      wrapper = field(label, input({ name: key, inputmode: "numeric", value: start === undefined || start === null ? "" : start }), options);
      read = () => (wrapper.control.value.trim() ? numberOrText(wrapper.control.value) : undefined);
    } else if (type === "array" && ["string", undefined].includes(shapeOf(node.items, root).type) && !resolve(node.items, root).properties) {
      wrapper = field(label, textarea(Array.isArray(start) ? start.join("\n") : "", { name: key, rows: 3 }), {
        ...options, hint: [hint, "One per line."].filter(Boolean).join(" "),
      });
      read = () => {
        const lines = wrapper.control.value.split("\n").map((line) => line.trim()).filter(Boolean);
        return lines.length || initial ? lines : undefined;
      };
    } else if (type === "string") {
      const kind = node.format === "uri" ? "url" : node.format === "email" ? "email" : "text";
      wrapper = field(label, input({ type: kind, name: key, value: start === undefined || start === null ? "" : start }), options);
      read = () => (wrapper.control.value.trim() ? wrapper.control.value.trim() : undefined);
    } else {
      wrapper = field(label, textarea(start === undefined || start === null ? "" : JSON.stringify(start, null, 2), { name: key, rows: 4 }), {
        ...options, hint: [hint, "JSON."].filter(Boolean).join(" "),
      });
      read = () => {
        const raw = wrapper.control.value.trim();
        if (!raw) return undefined;
        try { return JSON.parse(raw); } catch { return raw; }
      };
    }
    fields.push(wrapper);
    readers.push([key, read]);
  }
  const element = h("div", {}, object.description ? h("p", { class: "hint" }, object.description) : null, fields);
  return {
    element,
    fields,
    value() {
      const result = {};
      for (const [key, read] of readers) {
        const value = read();
        if (value !== undefined) result[key] = value;
      }
      return result;
    },
  };
}

function credentialsForm(source, connections, editing) {
  const kinds = source.credential_kinds || [];
  const choices = [...(editing ? [["", "Keep the stored credentials"]] : []),
    ...kinds.map((kind) => [kind, CREDENTIAL_LABELS[kind] || kind])];
  const kind = field("Credential type", select(choices, editing ? "" : kinds[0]), { name: "credentials" });
  const detail = h("div");
  let readers = [];
  const fields = [kind];
  const secret = (label, key, options = {}) => {
    const wrapper = field(label, options.multiline
      ? textarea("", { name: key, rows: 6, autocomplete: "off", spellcheck: "false" })
      : input({ type: options.visible ? "text" : "password", name: key, autocomplete: "off" }), { name: key, required: !options.optional, hint: options.hint });
    fields.push(wrapper);
    readers.push([key, () => wrapper.control.value.trim() || undefined]);
    return wrapper;
  };
  const draw = () => {
    fields.length = 1;
    readers = [];
    const chosen = kind.control.value;
    const parts = [];
    if (chosen === "basic") {
      parts.push(secret("Account email", "email", { visible: true }), secret("API token", "api_token"));
    } else if (chosen === "bearer") {
      parts.push(secret("Token", "token"));
    } else if (chosen === "connection") {
      const connected = (connections.items || []).filter((item) => !source.provider || item.provider === source.provider);
      const picker = field("Connection", select(
        connected.length ? connected.map((item) => [item.provider, `${title(item.provider)} (${item.status})`]) : [["", "No connection yet: connect a provider first"]],
        connected[0] && connected[0].provider), { name: "provider", hint: source.provider ? `This source uses the ${source.provider} connection.` : null });
      fields.push(picker);
      readers.push(["provider", () => picker.control.value || undefined]);
      parts.push(picker, h("p", {}, h("a", { href: "#/connections" }, "Manage connections")));
    } else if (chosen === "service_account") {
      const key = secret("Service account JSON key", "key", { multiline: true, hint: "The JSON key file's contents." });
      const subject = secret("Impersonated user (subject)", "subject", { visible: true, optional: true });
      readers = readers.map(([name, read]) => (name === "key" ? [name, () => {
        const raw = read();
        try { return raw && JSON.parse(raw); } catch { return raw; }
      }] : [name, read]));
      parts.push(key, subject);
    } else if (chosen === "client_credentials") {
      parts.push(secret("Client (application) id", "client_id", { visible: true }),
        secret("Client secret", "client_secret", { optional: true, hint: "Or a certificate below." }));
      const certificate = secret("Certificate (PEM)", "certificate", { multiline: true, optional: true });
      const privateKey = secret("Certificate private key (PEM)", "private_key", { multiline: true, optional: true });
      parts.push(certificate, privateKey);
    }
    detail.replaceChildren(...parts);
  };
  kind.control.addEventListener("change", draw);
  draw();
  return {
    element: h("div", {}, kind, detail),
    fields,
    value() {
      const chosen = kind.control.value;
      if (!chosen) return null;
      const result = { type: chosen };
      for (const [key, read] of readers) {
        const value = read();
        if (value !== undefined) result[key] = value;
      }
      if (chosen === "client_credentials" && (result.certificate || result.private_key)) {
        result.certificate = { certificate: result.certificate, private_key: result.private_key };
        delete result.private_key;
      }
      return result;
    },
  };
}

function sinkForm(current, editing) {
  const choices = [...(editing ? [["", "Keep the current sink"]] : []),
    ["directory", "Directory (local stack only)"], ["ragflow", "RAGFlow dataset"], ["webhook", "Webhook"]];
  const kind = field("Sink type", select(choices, editing ? "" : "directory"), { name: "sink" });
  const detail = h("div");
  let readers = [];
  const fields = [kind];
  const text = (label, key, options = {}) => {
    const wrapper = field(label, input({ type: options.secret ? "password" : "text", name: key, autocomplete: "off", value: options.value || "" }), { name: key, required: !options.optional, hint: options.hint });
    fields.push(wrapper);
    readers.push([key, () => wrapper.control.value.trim() || undefined]);
    return wrapper;
  };
  const draw = () => {
    fields.length = 1;
    readers = [];
    const chosen = kind.control.value;
    const same = current && current.type === chosen ? current : {};
    if (chosen === "directory") {
      detail.replaceChildren(text("Directory path", "path", { value: same.path, hint: "An absolute path on the machine running tributary-local." }));
    } else if (chosen === "ragflow") {
      detail.replaceChildren(text("RAGFlow URL", "base_url", { value: same.base_url }), text("Dataset id", "dataset_id", { value: same.dataset_id }),
        text("RAGFlow API key", "api_key", { secret: true }));
    } else if (chosen === "webhook") {
      detail.replaceChildren(text("Webhook URL", "url", { value: same.url }),
        text("Signing secret", "secret", { secret: true, hint: "At least 16 characters; used to sign each delivery." }));
    } else {
      detail.replaceChildren(h("p", { class: "hint" }, `Current: ${sinkText(current)}`));
    }
  };
  kind.control.addEventListener("change", draw);
  draw();
  return {
    element: h("div", {}, kind, detail),
    fields,
    value() {
      const chosen = kind.control.value;
      if (!chosen) return null;
      const result = { type: chosen };
      for (const [key, read] of readers) {
        const value = read();
        if (value !== undefined) result[key] = value;
      }
      return result;
    },
  };
}

// ---------- crawls ----------

function rememberCrawl(crawl, url) {
  const known = recentCrawls().filter((entry) => entry.id !== crawl.id);
  known.unshift({ id: crawl.id, url, started: Date.now() });
  sessionStorage.setItem(CRAWLS_KEY, JSON.stringify(known.slice(0, 20)));
}

function recentCrawls() {
  try { return JSON.parse(sessionStorage.getItem(CRAWLS_KEY)) || []; } catch { return []; }
}

async function pageCrawls(main) {
  const mode = field("What to fetch", select([["crawl", "Crawl a site (follow links)"], ["batch", "Batch scrape a list of URLs"]], "crawl"), { name: "mode" });
  const url = field("Start URL", input({ type: "url", name: "url", placeholder: "https://docs.example.com/" }), { name: "url", required: true });
  const urls = field("URLs", textarea("", { name: "urls", rows: 4 }), { name: "urls", required: true, hint: "One per line." });
  const limit = field("Page limit", input({ name: "limit", inputmode: "numeric", value: "100" }), { name: "limit", hint: "1 to 10,000." });
  const depth = field("Maximum depth", input({ name: "max_depth", inputmode: "numeric", value: "10" }), { name: "max_depth" });
  const include = field("Include paths", textarea("", { name: "include_paths", rows: 2 }), { name: "include_paths", hint: "Regular expressions on the path, one per line." });
  const exclude = field("Exclude paths", textarea("", { name: "exclude_paths", rows: 2 }), { name: "exclude_paths", hint: "Regular expressions on the path, one per line." });
  const checks = {
    only_main_content: field("Only main content", h("input", { type: "checkbox", checked: true }), { hint: "Drop navigation, sidebars and footers." }),
    allow_subdomains: field("Allow subdomains", h("input", { type: "checkbox" })),
    allow_external: field("Allow external links", h("input", { type: "checkbox" })),
    ignore_sitemap: field("Ignore sitemap", h("input", { type: "checkbox" })),
    ignore_query_params: field("Ignore query parameters", h("input", { type: "checkbox" })),
  };
  const error = formError();
  const submit = h("button", { type: "submit" }, "Start");
  const crawlOnly = h("div", {}, url, limit, depth, include, exclude);
  const form = h("form", { novalidate: true }, mode, crawlOnly, urls, Object.values(checks), error, h("div", { class: "actions" }, submit));
  const sync = () => {
    const batch = mode.control.value === "batch";
    crawlOnly.hidden = batch;
    urls.hidden = !batch;
    submit.textContent = batch ? "Start batch scrape" : "Start crawl";
  };
  mode.control.addEventListener("change", sync);
  sync();
  const lines = (wrapper) => wrapper.control.value.split("\n").map((line) => line.trim()).filter(Boolean);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    await busy(submit, async () => {
      const batch = mode.control.value === "batch";
      const body = { only_main_content: checks.only_main_content.control.checked };
      let path = "/batch/scrape";
      if (batch) {
        body.urls = lines(urls);
      } else {
        path = "/crawls";
        Object.assign(body, { url: url.control.value.trim() });
        if (limit.control.value.trim()) body.limit = numberOrText(limit.control.value);
        if (depth.control.value.trim()) body.max_depth = numberOrText(depth.control.value);
        if (lines(include).length) body.include_paths = lines(include);
        if (lines(exclude).length) body.exclude_paths = lines(exclude);
        for (const key of ["allow_subdomains", "allow_external", "ignore_sitemap", "ignore_query_params"]) {
          if (checks[key].control.checked) body[key] = true;
        }
      }
      try {
        const crawl = await api("POST", path, body);
        rememberCrawl(crawl, batch ? `${body.urls.length} URLs` : body.url);
        location.hash = `#/crawls/${encodeURIComponent(crawl.id)}`;
      } catch (failure) {
        const byCode = {
          invalid_url: url, unsupported_scheme: url, url_not_allowed: url, invalid_limit: limit,
          invalid_max_depth: depth, invalid_pattern: /exclude/.test(failure.message) ? exclude : include, invalid_urls: urls,
        };
        const target = byCode[failure.code];
        if (target) setFieldError(target, describe(failure));
        else showError(error, failure);
      }
    });
  });
  main.append(h("h1", {}, "Crawls"), form);
  const recent = recentCrawls();
  if (recent.length) {
    main.append(h("h2", {}, "Recent crawls"), h("ul", {}, recent.map((entry) =>
      h("li", {}, h("a", { href: `#/crawls/${encodeURIComponent(entry.id)}` }, entry.url), ` · ${when(entry.started)}`))));
  }
}

const TERMINAL = new Set(["completed", "cancelled", "failed"]);

async function pageCrawl(main, id) {
  const heading = h("h1", {}, "Crawl");
  const status = h("p", { role: "status", "aria-live": "polite" });
  const bar = h("span");
  const progress = h("div", { class: "progress", role: "progressbar", "aria-label": "Crawl progress", "aria-valuemin": "0", "aria-valuemax": "100" }, bar);
  const counters = h("ul", { class: "counters", "aria-label": "Counters" });
  const error = formError();
  const results = h("div");
  const preview = h("section", { "aria-live": "polite" });
  const cancel = button("Cancel crawl", async () => {
    if (!confirm("Cancel this crawl? Pages in flight finish; nothing new is fetched.")) return;
    await busy(cancel, async () => {
      try {
        await api("DELETE", `/crawls/${encodeURIComponent(id)}`);
        await refresh();
      } catch (failure) { showError(error, failure); }
    });
  }, { class: "danger" });
  main.append(heading, status, progress, counters, h("div", { class: "actions" }, cancel), error,
    h("h2", {}, "Pages"), results, preview);
  let firstSeen = null;
  let shown = 0;
  const refresh = async () => {
    const crawl = await api("GET", `/crawls/${encodeURIComponent(id)}?limit=100`);
    const c = crawl.counters || {};
    const total = Math.max(c.discovered || 0, (c.done || 0) + (c.failed || 0) + (crawl.pending || 0), 1);
    const finished = (c.done || 0) + (c.failed || 0);
    const percent = TERMINAL.has(crawl.status) ? 100 : Math.min(99, Math.round((finished / total) * 100));
    bar.style.width = `${percent}%`;
    progress.setAttribute("aria-valuenow", String(percent));
    const now = Date.now();
    if (firstSeen === null) firstSeen = { at: now, done: finished };
    const elapsed = (now - firstSeen.at) / 1000;
    const rate = elapsed > 0.5 ? ((finished - firstSeen.done) / elapsed).toFixed(1) : "—";
    heading.textContent = `${crawl.kind === "batch" ? "Batch scrape" : "Crawl"} ${crawl.status}`;
    status.replaceChildren(statusBadge(crawl.status), ` · ${finished} of ${total} pages · ${rate} pages/s`);
    counters.replaceChildren(...Object.entries(c).filter(([, value]) => value).map(([key, value]) =>
      h("li", {}, `${key.replace(/_/g, " ")}: `, h("b", {}, String(value)))));
    cancel.hidden = TERMINAL.has(crawl.status);
    const pages = crawl.results || [];
    if (pages.length !== shown) {
      shown = pages.length;
      results.replaceChildren(pages.length ? table(["Page", "Status", ""], pages.map((page) => h("tr", {},
        h("td", {}, page.title ? `${page.title} — ${page.url}` : page.url),
        h("td", {}, pageState(page)),
        h("td", {}, page.markdown !== undefined || page.reason ? button("Preview", () => showPreview(preview, page), { "aria-label": `Preview ${page.url}` }) : "")))) : h("p", {}, "No pages yet."));
    }
    if (TERMINAL.has(crawl.status)) pageTimers.forEach(clearInterval);
  };
  await refresh();
  every(1000, () => refresh().catch((failure) => showError(error, failure)));
}

// A crawl result's state ("done", "failed", ...) with the HTTP status when there was one.
function pageState(page) {
  const state = typeof page.state === "string" ? page.state : JSON.stringify(page.state || "");
  return page.status_code ? `${state} (HTTP ${page.status_code})` : state;
}

function showPreview(container, page) {
  const { markdown, reason, state, ...details } = page;
  container.replaceChildren(h("h2", {}, `Preview: ${page.title || page.url}`),
    reason ? notice(String(reason), "error") : null,
    metadataList(details),
    h("pre", { class: "markdown", tabindex: "0", "aria-label": "Markdown" }, page.markdown || ""));
  container.querySelector("h2").setAttribute("tabindex", "-1");
  container.querySelector("h2").focus();
}

function metadataList(metadata) {
  return h("dl", { class: "meta" }, Object.entries(metadata).filter(([, value]) => value !== null && typeof value !== "object")
    .map(([key, value]) => [h("dt", {}, key.replace(/_/g, " ")), h("dd", {}, String(value))]));
}

// ---------- scrape ----------

async function pageScrape(main) {
  const url = field("Page URL", input({ type: "url", name: "url", placeholder: "https://example.com/page" }), { name: "url", required: true });
  const mainOnly = field("Only main content", h("input", { type: "checkbox", checked: true }));
  const error = formError();
  const submit = h("button", { type: "submit" }, "Scrape");
  const result = h("section", { "aria-live": "polite" });
  const form = h("form", { novalidate: true }, url, mainOnly, error, h("div", { class: "actions" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    result.replaceChildren();
    await busy(submit, async () => {
      try {
        const page = await api("POST", "/scrape", {
          url: url.control.value.trim(), formats: ["markdown", "links"], only_main_content: mainOnly.control.checked,
        });
        result.replaceChildren(h("h2", {}, page.metadata && page.metadata.title ? page.metadata.title : page.url),
          metadataList(page.metadata || {}),
          h("h2", {}, "Markdown"), h("pre", { class: "markdown", tabindex: "0", "aria-label": "Markdown" }, page.markdown || ""),
          page.links ? h("details", {}, h("summary", {}, `${page.links.length} links`),
            h("ul", {}, page.links.map((link) => h("li", {}, typeof link === "string" ? link : JSON.stringify(link))))) : null);
      } catch (failure) {
        if (/^(invalid_url|unsupported_scheme|url_not_allowed)$/.test(failure.code)) setFieldError(url, describe(failure));
        else showError(error, failure);
      }
    });
  });
  main.append(h("h1", {}, "Scrape a page"), form, result);
}

// ---------- start ----------

document.getElementById("signout").addEventListener("click", signOut);
window.addEventListener("hashchange", render);
// A link to the page already shown fires no hashchange: render it afresh (new data, focus on
// its heading) as a user who clicked it expects.
document.addEventListener("click", (event) => {
  const link = event.target instanceof Element ? event.target.closest("a[href^='#/']") : null;
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  if (link.getAttribute("href") === location.hash) {
    event.preventDefault();
    render();
  }
});
render();
