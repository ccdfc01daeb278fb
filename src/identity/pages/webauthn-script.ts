/**
 * /static/webauthn.js: the browser half of a WebAuthn ceremony on the security-key page. It fetches
 * the options, asks the browser's authenticator, and posts the result (binary fields as base64url,
 * the JSON shape @simplewebauthn/server reads). No framework, no inline code.
 */
export const WEBAUTHN_SCRIPT = `'use strict';
(function () {
  var root = document.getElementById('webauthn');
  if (!root) return;
  var errorBox = document.getElementById('webauthn-error');
  function b64urlToBuf(s) {
    var b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
    var out = new Uint8Array(b.length);
    for (var i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
    return out.buffer;
  }
  function bufToB64url(buf) {
    var bytes = new Uint8Array(buf), s = '';
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
  }
  function post(url, body) {
    return fetch(url, { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      .then(function (r) { return r.json().then(function (j) { if (!r.ok) throw new Error(j.error || 'failed'); return j; }); });
  }
  function fail(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }
  function creationOptions(o) {
    o.challenge = b64urlToBuf(o.challenge);
    o.user.id = b64urlToBuf(o.user.id);
    (o.excludeCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
    return { publicKey: o };
  }
  function requestOptions(o) {
    o.challenge = b64urlToBuf(o.challenge);
    (o.allowCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
    return { publicKey: o };
  }
  function registrationJson(c) {
    return {
      id: c.id, rawId: bufToB64url(c.rawId), type: c.type,
      clientExtensionResults: c.getClientExtensionResults(),
      authenticatorAttachment: c.authenticatorAttachment || undefined,
      response: {
        clientDataJSON: bufToB64url(c.response.clientDataJSON),
        attestationObject: bufToB64url(c.response.attestationObject),
        transports: c.response.getTransports ? c.response.getTransports() : []
      }
    };
  }
  function authenticationJson(c) {
    return {
      id: c.id, rawId: bufToB64url(c.rawId), type: c.type,
      clientExtensionResults: c.getClientExtensionResults(),
      authenticatorAttachment: c.authenticatorAttachment || undefined,
      response: {
        clientDataJSON: bufToB64url(c.response.clientDataJSON),
        authenticatorData: bufToB64url(c.response.authenticatorData),
        signature: bufToB64url(c.response.signature),
        userHandle: c.response.userHandle ? bufToB64url(c.response.userHandle) : undefined
      }
    };
  }
  document.getElementById('webauthn-start').addEventListener('click', function () {
    errorBox.hidden = true;
    var csrf = root.getAttribute('data-csrf');
    var nameInput = document.getElementById('key-name');
    post('/signin/security-key/options', { csrf: csrf })
      .then(function (ceremony) {
        if (ceremony.mode === 'register')
          return navigator.credentials.create(creationOptions(ceremony.options)).then(registrationJson);
        return navigator.credentials.get(requestOptions(ceremony.options)).then(authenticationJson);
      })
      .then(function (response) {
        return post('/signin/security-key/verify', {
          csrf: csrf, response: response, returnTo: root.getAttribute('data-return-to'),
          name: nameInput ? nameInput.value : undefined
        });
      })
      .then(function (done) { window.location.assign(done.redirect); })
      .catch(function (err) { fail(err && err.name === 'NotAllowedError' ? 'The security key did not answer, or you cancelled. Try again.' : (err.message || 'Something went wrong. Try again.')); });
  });
})();
`;
