// Checks an inclusion proof in the browser (RFC 9162 section 2.1.3.2) with WebCrypto SHA-256:
// the leaf hash and the path must lead to the checkpoint's root. The server's word is not
// needed: a wrong proof or root says so. openpars-verify does the same offline.
(function () {
  "use strict";
  function bytes(hex) {
    var out = new Uint8Array(hex.length / 2);
    for (var i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
    return out;
  }
  function hex(buf) {
    return Array.prototype.map.call(new Uint8Array(buf), function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }
  function node(left, right) {
    var joined = new Uint8Array(1 + left.length + right.length);
    joined[0] = 1;
    joined.set(left, 1);
    joined.set(right, 1 + left.length);
    return crypto.subtle.digest("SHA-256", joined).then(function (d) { return new Uint8Array(d); });
  }
  async function verify(el) {
    var index = BigInt(el.dataset.leafIndex), last = BigInt(el.dataset.treeSize) - 1n;
    var hash = bytes(el.dataset.leafHash);
    var path = el.dataset.proof ? el.dataset.proof.split(",") : [];
    if (index > last) return false;
    for (var i = 0; i < path.length; i++) {
      if (last === 0n) return false;
      var sibling = bytes(path[i]);
      if (index % 2n === 1n || index === last) {
        hash = await node(sibling, hash);
        if (index % 2n === 0n) {
          while (index % 2n === 0n && index !== 0n) { index >>= 1n; last >>= 1n; }
        }
      } else {
        hash = await node(hash, sibling);
      }
      index >>= 1n; last >>= 1n;
    }
    return last === 0n && hex(hash) === el.dataset.root;
  }
  document.addEventListener("DOMContentLoaded", function () {
    var el = document.getElementById("proof"), out = document.getElementById("proof-check");
    if (!el || !out || !window.crypto || !crypto.subtle) return;
    verify(el).then(function (ok) {
      out.textContent = ok
        ? "Checked in your browser: the path leads from the leaf to the checkpoint's root."
        : "The proof does NOT lead to the checkpoint's root. Keep the receipt and tell the auditors.";
      out.className = ok ? "notice verified" : "alert";
    });
  });
})();
