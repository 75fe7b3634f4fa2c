// CareSeal patient portal: the idle-logout warning. The server ends a
// session after 15 minutes without a request; two minutes before, this
// warns and offers to stay signed in (a GET of /api/session counts as
// activity). Pages work without JavaScript.
const IDLE_MS = 15 * 60 * 1000;
const WARN_MS = 13 * 60 * 1000;

function start() {
  if (document.body.dataset.signedIn !== "1") return;
  const box = document.getElementById("idle-warning");
  let warnTimer = 0;
  let endTimer = 0;
  const arm = () => {
    clearTimeout(warnTimer);
    clearTimeout(endTimer);
    box.hidden = true;
    warnTimer = setTimeout(warn, WARN_MS);
    endTimer = setTimeout(() => { window.location.assign("/"); }, IDLE_MS);
  };
  const warn = () => {
    box.textContent = "For your privacy you will be signed out in 2 minutes. ";
    const stay = document.createElement("button");
    stay.type = "button";
    stay.textContent = "Stay signed in";
    stay.addEventListener("click", async () => {
      const res = await fetch("/api/session", { credentials: "same-origin" });
      const body = res.ok ? await res.json() : { signed_in: false };
      if (body.signed_in) arm(); else window.location.assign("/");
    });
    box.appendChild(stay);
    box.hidden = false;
    stay.focus();
  };
  arm();
}

start();

// Live message badges: /api/inbox returns only counts and a change cursor
// (never message text). It does not count as activity, so the idle logout
// above still applies. An open conversation refreshes its message list when
// the care team writes.
const POLL_MS = 5000;

function startInbox() {
  if (document.body.dataset.signedIn !== "1") return;
  let cursor = "";
  let timer = 0;
  const poll = async () => {
    if (document.visibilityState !== "visible") return;
    let body;
    try {
      const res = await fetch("/api/inbox", { credentials: "same-origin" });
      if (res.status === 401) { clearInterval(timer); return; }
      if (!res.ok) return;
      body = await res.json();
    } catch (e) {
      return;
    }
    if (body.cursor === cursor) return;
    const first = cursor === "";
    cursor = body.cursor;
    for (const el of document.querySelectorAll("[data-unread-total]")) {
      el.textContent = body.total_unread > 0 ? ` ${body.total_unread} unread` : "";
      el.hidden = body.total_unread === 0;
    }
    for (const t of body.threads) {
      const item = document.querySelector(`[data-thread-index="${t.index}"] .badge`);
      if (item) {
        item.textContent = t.unread > 0 ? `${t.unread} unread` : "";
        item.hidden = t.unread === 0;
      }
      const live = document.querySelector(`[data-thread-live="${t.index}"]`);
      if (live && t.unread > 0) {
        const res = await fetch(`/messages/${t.index}/list`, { credentials: "same-origin" });
        if (res.ok) live.innerHTML = await res.text();
      }
    }
    const notice = document.getElementById("inbox-notice");
    if (notice && body.other_unread > 0 && !first) {
      notice.textContent = "You have a new conversation. ";
      const link = document.createElement("a");
      link.href = "/messages";
      link.textContent = "Show it";
      notice.appendChild(link);
      notice.hidden = false;
    }
  };
  poll();
  timer = setInterval(poll, POLL_MS);
}

startInbox();
