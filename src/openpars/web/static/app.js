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
// Intake: a statute chosen from the list fills in its description and usual grade when empty.
document.addEventListener("change", function (event) {
  var input = event.target;
  if (!input.matches || !input.matches("input[data-statute]")) {
    return;
  }
  var list = document.getElementById(input.getAttribute("list"));
  var option = list && Array.prototype.find.call(list.options, function (o) {
    return o.value === input.value;
  });
  if (!option) {
    return;
  }
  var row = input.getAttribute("data-statute");
  var description = document.getElementById("charges." + row + ".description");
  var grade = document.getElementById("charges." + row + ".grade");
  if (description && !description.value) {
    description.value = option.getAttribute("data-description");
  }
  if (grade && !grade.value) {
    grade.value = option.getAttribute("data-grade");
  }
});
// A live part whose session has ended (idle lock, logout elsewhere) was answered with the login
// page: go there with the whole page, coming back to this page after logging in.
document.addEventListener("htmx:beforeSwap", function (event) {
  var url = event.detail.xhr && event.detail.xhr.responseURL;
  if (!url) {
    return;
  }
  var target = new URL(url, window.location.href);
  if (target.origin === window.location.origin && target.pathname === "/login") {
    event.detail.shouldSwap = false;
    target.searchParams.set("next", window.location.pathname + window.location.search);
    window.location.assign(target.pathname + target.search);
  }
});
