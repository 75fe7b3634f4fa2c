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
