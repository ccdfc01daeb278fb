/** Server-rendered pages: plain HTML forms, no JavaScript, styles from /static/ferry.css only. */

export function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/** A tagged template that escapes every interpolated value unless it is already Html. */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    const rendered = Array.isArray(v)
      ? v.map((x) => (x instanceof Html ? x.value : escapeHtml(x))).join('')
      : v instanceof Html
        ? v.value
        : escapeHtml(v);
    out += rendered + (strings[i + 1] ?? '');
  });
  return new Html(out);
}

export function page(title: string, body: Html): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)} · Ferry</title>
<link rel="stylesheet" href="/static/ferry.css">
<link rel="icon" href="data:,">
</head>
<body>
<main>
<header><a class="brand" href="/">Ferry</a></header>
${body.value}
</main>
</body>
</html>
`;
}

export function errorPage(status: number, title: string, detail: string): string {
  return page(
    title,
    html`<h1>${title}</h1><p class="error" role="alert">${detail}</p><p><a href="/">Back to Ferry</a></p><p class="muted">HTTP ${status}</p>`,
  );
}

/** Content-Security-Policy for every server-rendered page (see csp.ts for the per-response form-action). */
export { PAGE_CSP } from './csp.js';

export const STYLESHEET = `
:root { color-scheme: light dark; --accent: #0b6bcb; --err: #b3261e; }
* { box-sizing: border-box; }
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; background: Canvas; color: CanvasText; }
main { max-width: 34rem; margin: 3rem auto; padding: 0 1.25rem; }
header { margin-bottom: 2rem; }
.brand { font-weight: 700; font-size: 1.25rem; text-decoration: none; color: var(--accent); }
h1 { font-size: 1.5rem; margin: 0 0 1rem; }
label { display: block; margin: 1rem 0 .25rem; font-weight: 600; }
input[type=text], input[type=password], input[type=email] { width: 100%; padding: .6rem .7rem; font: inherit; border: 1px solid #8889; border-radius: .4rem; }
button { margin-top: 1.25rem; padding: .6rem 1.1rem; font: inherit; font-weight: 600; border: 0; border-radius: .4rem; background: var(--accent); color: white; cursor: pointer; }
a.button { display: inline-block; padding: .6rem 1.1rem; font-weight: 600; border: 1px solid var(--accent); border-radius: .4rem; color: var(--accent); text-decoration: none; }
p.upstream { margin-top: 1.5rem; }
button.link { background: none; color: var(--accent); padding: 0; margin: 0; font-weight: 400; }
.error { color: var(--err); border-left: 3px solid var(--err); padding-left: .75rem; }
.muted { color: #545d68; font-size: .9rem; overflow-wrap: anywhere; }
code, .secret { font-family: ui-monospace, monospace; word-break: break-all; }
img.qr { display: block; margin: .5rem 0; background: white; }
.secret { font-size: 1.15rem; letter-spacing: .08em; padding: .5rem; border: 1px dashed #8889; display: block; }
table { width: 100%; border-collapse: collapse; margin-top: .5rem; font-size: .9rem; }
th, td { text-align: left; padding: .35rem .25rem; border-bottom: 1px solid #8884; vertical-align: top; }
form.inline { display: inline; }
`;
