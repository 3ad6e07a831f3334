import type { ChainStatus } from './chain-monitor.js';
import { html, type SafeHtml } from './html.js';
import { recordHref, renderTime } from './record-view.js';

/** The key that signs the log's checkpoints, as the pages publish it. */
export interface PublishedKey {
  /** The verifier key text (`name+keyid+base64`). */
  readonly text: string;
  /** `name+keyid`. */
  readonly label: string;
  /** The checkpoint origin: the audit log id. */
  readonly logId: string;
}

/**
 * The verifier key element every page carries: the browser's proof check reads the key and the
 * log id from it.
 */
function keyElement(key: PublishedKey): SafeHtml {
  return html`<code id="verifier-key" data-key="${key.text}" data-log-id="${key.logId}">${key.label}</code>`;
}

function keyDetails(key: PublishedKey): SafeHtml {
  return html`<details><summary>Verifier key</summary><p><code class="key">${key.text}</code></p>
<p>Compare it with the key you were given out of band before trusting a proof; <a href="/audit/verifier-key">download it</a> for <code>tollgate audit verify --key</code>.</p></details>`;
}

function fullCheck(status: ChainStatus): SafeHtml {
  const full = status.fullCheck;
  if (full === null) return html``;
  return html`<div><dt>Full verification</dt><dd>${renderTime(full.at)} · ${full.records.toLocaleString('en-US')} records, ${full.checkpoints.toLocaleString('en-US')} checkpoints, ${full.durationMs} ms</dd></div>`;
}

/** The chain status at the top of every page: green when verified, red naming the first bad seq. */
export function renderChainBanner(status: ChainStatus, key: PublishedKey): SafeHtml {
  const verified = status.verified;
  const details =
    verified === null
      ? html`<dl><div><dt>Signing key</dt><dd>${keyElement(key)}</dd></div>${fullCheck(status)}</dl>`
      : html`<dl>
<div><dt>Checkpoint size</dt><dd>${verified.size.toLocaleString('en-US')}</dd></div>
<div><dt>Root</dt><dd>${verified.root}</dd></div>
<div><dt>Signing key</dt><dd>${keyElement(key)}</dd></div>
<div><dt>Checkpoint signed</dt><dd>${verified.signedAt === null ? '—' : renderTime(verified.signedAt)}</dd></div>
${fullCheck(status)}
</dl>`;
  const failure = status.failure;
  if (status.state === 'failed' && failure !== null) {
    return html`<section class="chain chain-failed" role="alert" aria-labelledby="chain-title">
<strong id="chain-title">Audit log verification FAILED at seq ${failure.seq}: ${failure.reason}</strong>
<p>${failure.message}</p>
<p>Look at <a href="${recordHref(failure.seq)}">record ${failure.seq}</a>, run <code>tollgate audit verify</code> on the audit directory for the full report, and treat the records from seq ${failure.seq} on as untrusted.${
      verified === null ? '' : ` The last checkpoint verified before the failure covered ${verified.size.toLocaleString('en-US')} records.`
    }</p>
${details}${keyDetails(key)}</section>`;
  }
  if (status.state === 'verified' && verified !== null) {
    return html`<section class="chain chain-verified" role="status" aria-labelledby="chain-title">
<strong id="chain-title">Audit log verified up to checkpoint ${verified.size.toLocaleString('en-US')}</strong>
${details}${keyDetails(key)}</section>`;
  }
  const [title, text] =
    status.state === 'unsigned'
      ? ['No signed checkpoint yet', 'The gateway signs one within its checkpoint interval once records arrive.']
      : status.state === 'error'
        ? ['The audit log could not be checked', status.error ?? '']
        : ['Verifying the audit log…', 'The first check of the log is running; reload in a moment.'];
  return html`<section class="chain chain-pending" role="status" aria-labelledby="chain-title">
<strong id="chain-title">${title}</strong>
<p>${text}</p>
${details}${keyDetails(key)}</section>`;
}
