// Entry point: sign-in (token from /?token=… or pasted), then the chat, sidebar, voice and admin
// views wired together. Plain ES modules, no build step; everything is same-origin for the CSP.

import { api, captureTokenFromUrl, clearToken, getToken, setToken } from "./api.js";
import { ChatView } from "./chat.js";
import { Sidebar } from "./sidebar.js";
import { AdminView } from "./admin.js";
import { Voice } from "./voice.js";
import { debounce, el, hydrateIcons } from "./ui.js";

// First thing: take the token out of the address bar.
captureTokenFromUrl();
hydrateIcons();

const $ = (id) => document.getElementById(id);

const SUGGESTIONS = [
  "How fast should code reviews be?",
  "What makes a good CL description?",
  "How do I handle pushback on a review comment?",
  "```python\nprint(6 * 7)\n```",
];

function showSignIn(message = "") {
  $("app").hidden = true;
  $("signin").hidden = false;
  const error = $("signin-error");
  error.textContent = message;
  error.hidden = !message;
  $("signin-token").focus();
}

async function whoAmI() {
  return api.get("/me");
}

async function boot() {
  const farewell = window.sessionStorage.getItem("allin.signout");
  window.sessionStorage.removeItem("allin.signout");
  if (!getToken()) { showSignIn(farewell || ""); return; }
  try {
    startApp(await whoAmI());
  } catch (err) {
    if (err.status === 401) {
      clearToken();
      showSignIn("That token was not accepted (wrong, rotated or revoked). Paste a current one.");
    } else {
      showSignIn(`Could not reach the server (${err.message}). Try again in a moment.`);
    }
  }
}

$("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const token = $("signin-token").value.trim();
  if (!token) return;
  setToken(token);
  try {
    const me = await whoAmI();
    $("signin-token").value = "";
    startApp(me);
  } catch (err) {
    clearToken();
    showSignIn(err.status === 401 ? "That token was not accepted." : `Could not sign in: ${err.message}`);
  }
});

function signOut(message = "") {
  clearToken();
  window.localStorage.removeItem("allin.chat");
  if (message) window.sessionStorage.setItem("allin.signout", message);
  // A fresh page drops every socket, timer and cached view of the previous user.
  window.location.replace("/");
}

let started = false;

function startApp(me) {
  if (started) return;
  started = true;
  $("signin").hidden = true;
  $("app").hidden = false;
  $("user-name").textContent = me.name;
  $("greeting-name").textContent = me.name;
  const isAdmin = me.role === "admin";
  $("nav-admin").hidden = !isAdmin;

  const chat = new ChatView({
    messages: $("messages"),
    scroller: $("conversation"),
    empty: $("empty"),
    title: $("chat-title"),
    form: $("composer"),
    input: $("composer-input"),
    sendBtn: $("send-btn"),
    stopBtn: $("stop-btn"),
    attachBtn: $("attach-btn"),
    attachInput: $("attach-input"),
    attachList: $("attach-list"),
    connStatus: $("conn-status"),
  });
  const sidebar = new Sidebar({
    list: $("chat-list"),
    listStatus: $("chat-list-status"),
    loadMore: $("load-more"),
    search: $("search-input"),
    results: $("search-results"),
    resultsStatus: $("search-status"),
  });
  const voice = new Voice({
    button: $("mic-btn"),
    status: $("voice-status"),
    meter: $("voice-meter"),
    connect: () => chat.connectedSocket(),
  });
  chat.voice = voice;
  voice.addEventListener("bargein", (ev) => {
    if (chat.busy || ev.detail.wasPlaying) chat.interrupt({ speaking: ev.detail.wasPlaying });
  });
  const admin = isAdmin ? new AdminView($("admin-view")) : null;

  // --- navigation ------------------------------------------------------------------------
  const closeSidebar = () => setSidebar(false);
  function setSidebar(open) {
    document.body.classList.toggle("sidebar-open", open);
    $("menu-btn").setAttribute("aria-expanded", String(open));
    $("scrim").hidden = !open;
    if (open) $("search-input").focus();
  }
  $("menu-btn").addEventListener("click", () => setSidebar(!document.body.classList.contains("sidebar-open")));
  $("scrim").addEventListener("click", closeSidebar);

  function route() {
    const wantAdmin = window.location.hash === "#/admin";
    if (wantAdmin && !admin) { window.location.hash = "#/"; return; }
    $("chat-view").hidden = wantAdmin;
    document.body.classList.toggle("admin-mode", wantAdmin);
    $("admin-view").hidden = !wantAdmin;
    $("nav-admin").classList.toggle("active", wantAdmin);
    $("nav-admin").setAttribute("aria-current", wantAdmin ? "page" : "false");
    if (wantAdmin) admin.show();
    else admin?.hide();
    document.title = wantAdmin ? "Admin · Allin" : "Allin";
  }
  window.addEventListener("hashchange", route);
  const toChat = () => { if (window.location.hash === "#/admin") window.location.hash = "#/"; };

  // --- wiring --------------------------------------------------------------------------------
  $("new-chat-btn").addEventListener("click", () => { toChat(); chat.newChat(); closeSidebar(); });
  $("signout-btn").addEventListener("click", () => signOut());
  $("conn-retry").addEventListener("click", () => chat.retryConnection());
  window.addEventListener("allin:unauthorized", () => signOut("Your token is no longer valid. Sign in again."));

  sidebar.addEventListener("open", (ev) => {
    toChat();
    chat.openChat(ev.detail.chatId, { highlightTurnId: ev.detail.turnId || null });
    closeSidebar();
  });
  sidebar.addEventListener("renamed", (ev) => { if (ev.detail.chatId === chat.chatId) chat.setTitle(ev.detail.title); });
  sidebar.addEventListener("deleted", (ev) => { if (ev.detail.chatId === chat.chatId) chat.newChat(); });

  const refreshList = debounce(async () => {
    await sidebar.refresh();
    sidebar.setActive(chat.chatId);
    const title = chat.chatId && sidebar.titleOf(chat.chatId);
    if (title) chat.setTitle(title);
  }, 400);
  chat.addEventListener("chat", (ev) => {
    sidebar.setActive(ev.detail.chatId);
    if (ev.detail.created) refreshList();
  });
  chat.addEventListener("turn", () => refreshList());
  chat.addEventListener("unauthorized", () => signOut("Your token is no longer valid. Sign in again."));

  for (const text of SUGGESTIONS) {
    $("suggestions").append(el("li", {}, el("button", {
      type: "button", class: "suggestion", text: text.startsWith("```") ? "Run a Python snippet" : text,
      onclick: () => { $("composer-input").value = text; chat.send(); },
    })));
  }

  document.addEventListener("keydown", (ev) => {
    if (ev.key !== "Escape" || ev.defaultPrevented) return;
    if (document.querySelector("dialog[open]")) return;
    if (document.body.classList.contains("sidebar-open")) { closeSidebar(); $("menu-btn").focus(); return; }
    if (chat.busy || voice.playing) { ev.preventDefault(); chat.interrupt(); }
  });

  route();
  sidebar.refresh().then(() => sidebar.setActive(chat.chatId));
  const remembered = ChatView.rememberedChat();
  if (remembered) chat.openChat(remembered);
  else chat.newChat();
}

boot();
