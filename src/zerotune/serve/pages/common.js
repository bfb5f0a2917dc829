// Shared by chat.html and predict.html, inlined into each where "// common.js" stands (serve/pages.py).
// Whatever the server answers is only ever set as textContent, never parsed as HTML.
const $ = (id) => document.getElementById(id);
const KEY = "zerotune-token";

// A token in the address's fragment (#token=...) never reaches the server's logs; it is kept for this tab only.
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get("token")) {
  sessionStorage.setItem(KEY, fragment.get("token"));
  window.history.replaceState(null, "", location.pathname + location.search);
}

function headers() {
  const h = { "Content-Type": "application/json" };
  const token = sessionStorage.getItem(KEY);
  if (token) h["Authorization"] = "Bearer " + token;
  return h;
}

// The token form, `button` (the page's action) disabled until a token the server takes is given.
function askToken(refused, button) {
  $("auth").hidden = false;
  $("auth-message").textContent = refused
    ? "The server refused this token: check the one given to zerotune serve --token."
    : "This server needs its token (zerotune serve --token).";
  $("auth-message").className = refused ? "error" : "";
  $(button).disabled = true;
  $("token").focus();
}

// An error body of the OpenAI API ({error: {message}}) or of FastAPI ({detail}), as one text.
async function errorText(response) {
  try {
    const body = await response.json();
    if (body.error && body.error.message) return body.error.message;
    const detail = body.detail;
    if (Array.isArray(detail)) return detail.map((e) => (e.loc || []).join(".") + ": " + e.msg).join("\n");
    return typeof detail === "string" ? detail : JSON.stringify(body);
  } catch (e) { return response.status + " " + response.statusText; }
}

function showMetrics(run) {
  const table = $("metrics");
  table.replaceChildren();
  for (const split of ["val", "test"]) {
    const values = (run && run[split]) || {};
    const keys = Object.keys(values).filter((k) => k !== "n" && k !== "tokens");
    if (!keys.length) continue;
    const row = table.insertRow();
    const head = document.createElement("th");
    head.textContent = split;
    row.appendChild(head);
    for (const k of keys) row.insertCell().textContent = k + " " + Number(values[k]).toPrecision(4);
  }
}

// The token form's button and Enter key, then the page's first GET /metadata.
function start(loadMetadata) {
  $("use-token").addEventListener("click", () => {
    sessionStorage.setItem(KEY, $("token").value.trim());
    $("token").value = "";
    loadMetadata();
  });
  $("token").addEventListener("keydown", (event) => { if (event.key === "Enter") $("use-token").click(); });
  loadMetadata().catch((e) => { $("about").textContent = "cannot reach the server: " + e; });
}
