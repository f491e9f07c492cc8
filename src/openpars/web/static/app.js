// openpars: small behaviours only; every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // A form shown again with errors: move the focus to its summary, so it is read out first.
  var summary = document.querySelector(".error-summary");
  if (summary) {
    summary.focus();
  }
  // A button with data-confirm asks before its form is sent.
  document.querySelectorAll("[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) {
        event.preventDefault();
      }
    });
  });
});
// htmx requests carry the page's CSRF token (from the layout's meta tag) on every POST.
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta && event.detail.verb !== "get") {
    event.detail.parameters.csrf_token = meta.getAttribute("content");
  }
});
