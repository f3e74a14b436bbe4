// The console works without this script; it adds copy buttons and a live
// tool preview. Served from /console/static (the CSP allows no inline
// script).
"use strict";

function setUpCopyButtons() {
  for (const button of document.querySelectorAll("button.copy[data-copy]")) {
    const source = document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      let status = button.nextElementSibling;
      if (!status || !status.classList.contains("copied")) {
        status = button.parentElement.querySelector(".copied");
      }
      try {
        await navigator.clipboard.writeText(source.textContent.trim());
        if (status) status.textContent = "Copied.";
      } catch (e) {
        if (status) status.textContent = "Copy failed: select the text and copy it by hand.";
      }
    });
  }
}

function setUpPreview() {
  const form = document.getElementById("create-form");
  const target = document.getElementById("preview");
  if (!form || !target || !form.dataset.preview) return;
  const button = form.querySelector('button[value="preview"]');
  if (button) button.hidden = true;
  let generation = 0;
  async function refresh() {
    const query = new URLSearchParams();
    for (const box of form.querySelectorAll('input[type="checkbox"]:checked')) {
      if (box.name === "methods" || box.name === "tags") query.append(box.name, box.value);
    }
    const mine = ++generation;
    try {
      const response = await fetch(form.dataset.preview + "?" + query.toString(), {
        credentials: "same-origin",
        headers: { "Accept": "text/html" },
      });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const html = await response.text();
      // Only the newest answer counts when boxes change quickly.
      if (mine === generation) target.innerHTML = html;
    } catch (e) {
      if (button) button.hidden = false;
    }
  }
  form.addEventListener("change", (event) => {
    const input = event.target;
    if (input.name === "methods" || input.name === "tags") refresh();
    if (input.id === "expires_on" && input.value) {
      const radio = document.getElementById("expiry-date");
      if (radio) radio.checked = true;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setUpCopyButtons();
  setUpPreview();
});
