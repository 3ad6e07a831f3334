import { parseVerifierKey, verifyProofBundle } from '../../audit/index.js';
import { browser, type DomButton, type DomElement } from './dom.js';

/**
 * "Prove" on a record: fetches the record's C2SP tlog-proof from the gateway and checks it here,
 * in the browser, with the audit room's own `verifyProofBundle` (the checkpoint's Ed25519
 * signature by the published verifier key, the RFC 9162 inclusion proof up to the signed root,
 * and that the proven bytes are exactly the record shown on the page). The gateway is not
 * trusted for the answer: it only hands out the proof.
 */

const { document } = browser;

/** The verifier key and log id the page publishes (see the chain banner). */
interface PublishedKey {
  readonly text: string;
  readonly logId: string;
}

function publishedKey(): PublishedKey | null {
  const element = document.getElementById('verifier-key');
  const text = element?.dataset['key'];
  const logId = element?.dataset['logId'];
  return text === undefined || logId === undefined ? null : { text, logId };
}

function show(output: DomElement, ok: boolean, message: string): void {
  output.textContent = message;
  output.classList.remove('proof-ok', 'proof-failed', 'proof-pending');
  output.classList.add(ok ? 'proof-ok' : 'proof-failed');
}

async function errorMessage(response: { readonly status: number; text(): Promise<string> }): Promise<string> {
  const body = await response.text();
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // Not JSON: the status says enough.
  }
  return `the gateway answered ${response.status}`;
}

/** Fetches and verifies the proof of record `seq`, writing the outcome into `output`. */
async function proveRecord(seq: string, output: DomElement): Promise<void> {
  const key = publishedKey();
  if (key === null) return show(output, false, 'not verified: the page publishes no verifier key');
  output.textContent = 'verifying…';
  output.classList.remove('proof-ok', 'proof-failed');
  output.classList.add('proof-pending');
  let proof: string;
  try {
    const response = await browser.fetch(`/audit/proof/${encodeURIComponent(seq)}`, { headers: { accept: 'text/plain' }, credentials: 'same-origin' });
    if (!response.ok) return show(output, false, `no proof: ${await errorMessage(response)}`);
    proof = await response.text();
  } catch {
    return show(output, false, 'no proof: the gateway could not be reached');
  }
  let verifier;
  try {
    verifier = parseVerifierKey(key.text);
  } catch (error) {
    return show(output, false, `not verified: ${error instanceof Error ? error.message : 'the published verifier key is malformed'}`);
  }
  // The bytes shown on the page, when the page shows the record: the proof must be about them.
  const shown = document.getElementById(`raw-${seq}`)?.textContent ?? null;
  const bytes = shown === null ? undefined : new TextEncoder().encode(shown);
  const result = verifyProofBundle(proof, [verifier], bytes, { origin: key.logId });
  if (!result.ok) return show(output, false, `not verified: ${result.reason}: ${result.detail}`);
  const signer = `${verifier.name}+${verifier.keyId.toString(16).padStart(8, '0')}`;
  show(output, true, `verified: record ${result.index} is in the log of size ${result.checkpoint.size} signed by ${signer}`);
}

/** Shows the "Prove" buttons (hidden without scripts) and handles their clicks. */
export function enhanceProofs(): void {
  for (const button of Array.from(document.querySelectorAll('button[data-prove]'))) button.hidden = false;
  document.addEventListener('click', (event) => {
    const target = event.target as DomElement | null;
    const button = target?.closest?.('button[data-prove]') as DomButton | null | undefined;
    if (button === null || button === undefined) return;
    const seq = button.dataset['prove'] ?? '';
    const output = document.getElementById(`proof-${seq}`);
    if (output === null || button.disabled) return;
    button.disabled = true;
    void proveRecord(seq, output).finally(() => {
      button.disabled = false;
    });
  });
}
