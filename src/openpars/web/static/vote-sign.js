// openpars: sign a vote in the browser with WebCrypto Ed25519 (openpars-vote/v2).
// The private key is read from a file the voter picks or text they paste; it is used here to
// sign and is never sent: its fields have no name, so no form carries them. Only the signed
// vote document (the same JSON 'openpars vote sign' prints) is posted, and the server verifies
// it against the stakeholder's registered public key.
"use strict";
(function () {
  var LINES = ["proposal", "agreement", "version-hash", "action", "effective-at",
    "new-expires-at", "stakeholder", "key", "choice", "rationale-sha256", "at"];

  function hex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }
  function base64(buffer) {
    var text = "";
    new Uint8Array(buffer).forEach(function (b) { text += String.fromCharCode(b); });
    return window.btoa(text);
  }
  function fromBase64(text) {
    var clean = text.replace(/-/g, "+").replace(/_/g, "/").replace(/\s+/g, "");
    while (clean.length % 4) { clean += "="; }
    var raw = window.atob(clean);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out;
  }
  function sha256(bytes) {
    return window.crypto.subtle.digest("SHA-256", bytes);
  }
  // One spelling per instant, as the server's format_at: six fractional digits and a Z.
  function formatAt(date) {
    return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
  }
  function importKey(text) {
    var trimmed = text.trim();
    var algorithm = { name: "Ed25519" };
    if (trimmed.charAt(0) === "{") {
      var jwk = JSON.parse(trimmed);
      return window.crypto.subtle.importKey("jwk", jwk, algorithm, true, ["sign"]);
    }
    var match = /-----BEGIN PRIVATE KEY-----([\s\S]+?)-----END PRIVATE KEY-----/.exec(trimmed);
    if (!match) {
      throw new Error("the key is neither a PKCS#8 PEM (BEGIN PRIVATE KEY) nor a JWK");
    }
    return window.crypto.subtle.importKey("pkcs8", fromBase64(match[1]), algorithm, true, ["sign"]);
  }
  function readKey(form) {
    var file = form.querySelector("#key_file").files[0];
    if (file) { return file.text(); }
    return Promise.resolve(form.querySelector("#key_text").value);
  }
  function statement(terms, values) {
    var lines = ["openpars-vote/v2"];
    LINES.forEach(function (name) { lines.push(name + " " + values[name]); });
    return lines.join("\n") + "\n";
  }

  function sign(form) {
    var d = form.dataset;
    var choice = form.querySelector("#choice").value;
    var rationale = form.querySelector("#rationale").value;
    if (!rationale.trim()) {
      return Promise.reject(new Error("say why you vote this way (the rationale)"));
    }
    var encoder = new TextEncoder();
    var at = new Date();
    if (at < new Date(d.openedAt)) { at = new Date(d.openedAt); }
    var state = {};
    return readKey(form).then(function (text) {
      if (!text.trim()) { throw new Error("pick your private key file or paste the key"); }
      return importKey(text);
    }).then(function (key) {
      state.key = key;
      return window.crypto.subtle.exportKey("jwk", key);
    }).then(function (jwk) {
      return sha256(fromBase64(jwk.x));
    }).then(function (fingerprint) {
      state.fingerprint = hex(fingerprint);
      return sha256(encoder.encode(rationale));
    }).then(function (rationaleDigest) {
      state.values = {
        "proposal": d.proposal, "agreement": d.agreement, "version-hash": d.versionHash,
        "action": d.action, "effective-at": d.effectiveAt, "new-expires-at": d.newExpiresAt,
        "stakeholder": d.stakeholder, "key": state.fingerprint, "choice": choice,
        "rationale-sha256": hex(rationaleDigest), "at": formatAt(at)
      };
      var message = encoder.encode(statement(d, state.values));
      return window.crypto.subtle.sign({ name: "Ed25519" }, state.key, message);
    }).then(function (signature) {
      var v = state.values;
      return {
        "format": "openpars-vote/v2",
        "proposal_id": Number(v["proposal"]),
        "agreement_id": Number(v["agreement"]),
        "version_hash": v["version-hash"],
        "action": v["action"],
        "effective_at": v["effective-at"] === "none" ? null : v["effective-at"],
        "new_expires_at": v["new-expires-at"] === "none" ? null : v["new-expires-at"],
        "stakeholder_id": Number(v["stakeholder"]),
        "key_fingerprint": v["key"],
        "choice": v["choice"],
        "rationale": rationale,
        "at": v["at"],
        "signature": base64(signature)
      };
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("sign-form");
    if (!form) { return; }
    var problem = document.getElementById("sign-error");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      problem.hidden = true;
      sign(form).then(function (document_) {
        form.querySelector("#signed_vote_browser").value = JSON.stringify(document_);
        // Forget the key before the page is left: nothing of it stays in the form.
        form.querySelector("#key_text").value = "";
        form.querySelector("#key_file").value = "";
        form.submit();
      }).catch(function (error) {
        problem.textContent = "The vote was not signed: " + (error && error.message ? error.message : error) +
          ". Nothing was sent.";
        problem.hidden = false;
        problem.focus();
      });
    });
  });
})();
