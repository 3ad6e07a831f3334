import { describe, expect, it } from 'vitest';
import { escapeHtml, html, joinHtml } from '../../../src/web/html.js';

describe('html', () => {
  it('escapes every interpolated string, for content and attributes', () => {
    const name = `"><script>alert('x')</script>&`;
    expect(String(html`<a title="${name}">${name}</a>`)).toBe(
      '<a title="&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;">&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;</a>',
    );
    expect(escapeHtml('<&>"\'')).toBe('&lt;&amp;&gt;&quot;&#39;');
  });

  it('keeps markup made by html as it is, and renders lists, numbers and nothing', () => {
    const item = (text: string) => html`<li>${text}</li>`;
    expect(String(html`<ul>${['a<', 'b'].map(item)}</ul>`)).toBe('<ul><li>a&lt;</li><li>b</li></ul>');
    expect(String(html`${1234}|${null}|${undefined}|${false}|`)).toBe('1234||||');
    expect(String(joinHtml([html`<b>1</b>`, html`<b>2</b>`], html`, `))).toBe('<b>1</b>, <b>2</b>');
  });

  it('never trusts an object that only looks like markup', () => {
    const fake = { toString: () => '<script>' } as unknown as string;
    expect(String(html`${[fake]}`)).not.toContain('<script>');
  });
});
