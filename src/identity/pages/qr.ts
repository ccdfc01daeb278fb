import QRCode from 'qrcode';

/** The otpauth:// URI as an inline SVG QR code (an img data: URI, which the page CSP allows). */
export async function qrDataUri(text: string): Promise<string> {
  const svg = await QRCode.toString(text, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
  return `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`;
}
