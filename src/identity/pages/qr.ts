/** The otpauth:// URI as an inline SVG QR code (an img data: URI, which the page CSP allows). */
export async function qrDataUri(text: string): Promise<string> {
  // Loaded on first enrollment only: most starts never render a QR code.
  const { default: QRCode } = await import('qrcode');
  const svg = await QRCode.toString(text, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
  return `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`;
}
