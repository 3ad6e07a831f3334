/**
 * SQL classification throughput on one core, for a mix of 20 realistic statements (OLTP selects
 * with joins, inserts, updates, CTEs, DDL, SET), in three conditions:
 * - cold: cache off, every statement parsed, walked and fingerprinted;
 * - misses: cache on, but every text is new (literals vary, as with the simple protocol);
 * - cached: cache on, the same 20 texts again and again.
 * The baseline is libpg-query's bare `parseSync` on the same texts, measured in the same run.
 * Prints a markdown table.
 *
 *   node --import tsx bench/sql/run.ts
 */
import { performance } from 'node:perf_hooks';
import { loadModule, parseSync } from 'libpg-query';
import { loadSqlClassifier } from '../../src/sql/index.js';
import type { SqlClassifier } from '../../src/sql/index.js';

const REPEATS = 3;
const COLD_COUNT = 40_000;
const CACHED_COUNT = 2_000_000;

/** The mix; `$n` marks where a literal goes, so that the "misses" condition can vary them. */
const MIX: readonly string[] = [
  'SELECT o.id, o.total, c.name FROM public.orders o JOIN public.customers c ON c.id = o.customer_id WHERE o.id = $n',
  "SELECT id, email, created_at FROM users WHERE lower(email) = lower('user$n@example.com') LIMIT 1",
  'SELECT p.id, p.name, s.quantity FROM products p LEFT JOIN inventory.stock s ON s.product_id = p.id WHERE p.category_id = $n ORDER BY p.name LIMIT 50 OFFSET 0',
  "SELECT count(*) FROM orders WHERE status = 'open' AND created_at > now() - interval '$n days'",
  'SELECT abalance FROM pgbench_accounts WHERE aid = $n',
  "INSERT INTO orders (customer_id, total, status) VALUES ($n, 19.99, 'new') RETURNING id",
  "INSERT INTO order_items (order_id, product_id, quantity, price) VALUES ($n, 7, 2, 4.50), ($n, 9, 1, 12.00)",
  "UPDATE orders SET status = 'shipped', updated_at = now() WHERE id = $n",
  'UPDATE pgbench_accounts SET abalance = abalance + 10 WHERE aid = $n',
  'DELETE FROM sessions WHERE expires_at < now() - interval \'$n minutes\'',
  'WITH recent AS (SELECT customer_id, sum(total) AS spent FROM orders WHERE created_at > now() - interval \'30 days\' GROUP BY customer_id) SELECT c.name, r.spent FROM recent r JOIN customers c ON c.id = r.customer_id WHERE r.spent > $n ORDER BY r.spent DESC',
  'WITH moved AS (DELETE FROM cart_items WHERE cart_id = $n RETURNING product_id, quantity) INSERT INTO order_items (order_id, product_id, quantity) SELECT 42, product_id, quantity FROM moved',
  'SELECT * FROM orders WHERE customer_id = $n AND EXISTS (SELECT 1 FROM payments p WHERE p.order_id = orders.id AND p.state = \'settled\') FOR UPDATE',
  'INSERT INTO audit_events (actor, action, payload) SELECT $n, \'login\', jsonb_build_object(\'ip\', inet_client_addr()) ON CONFLICT DO NOTHING',
  'CREATE TABLE IF NOT EXISTS reports.daily_$n (day date PRIMARY KEY, orders integer NOT NULL, revenue numeric(12,2))',
  'ALTER TABLE orders ADD COLUMN note_$n text',
  'CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_created_$n ON orders (created_at)',
  "SET application_name = 'worker-$n'",
  'SET statement_timeout = $n',
  'BEGIN ISOLATION LEVEL REPEATABLE READ',
];

const fixed = MIX.map((text) => text.replaceAll('$n', '1'));
const statementsPerPass = fixed.length;

function measure(label: string, count: number, run: (i: number) => void): { label: string; rate: number; seconds: number } {
  for (let i = 0; i < Math.min(count, 20_000); i++) run(i);
  const seconds: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    const start = performance.now();
    for (let i = 0; i < count; i++) run(i);
    seconds.push((performance.now() - start) / 1000);
  }
  seconds.sort((a, b) => a - b);
  const median = seconds[Math.floor(REPEATS / 2)] as number;
  return { label, rate: count / median, seconds: median };
}

function check(classifier: SqlClassifier, text: string): void {
  const result = classifier.classify(text);
  if (!result.ok) throw new Error(`the mix must parse: ${text}: ${result.error.message}`);
}

await loadModule();
const cold = await loadSqlClassifier({ cacheSize: 0 });
const warm = await loadSqlClassifier({ cacheSize: 10_000 });
let counter = 0;

const results = [
  measure('libpg-query parseSync alone (baseline)', COLD_COUNT, (i) => {
    parseSync(fixed[i % statementsPerPass] as string);
  }),
  measure('cold: cache off', COLD_COUNT, (i) => check(cold, fixed[i % statementsPerPass] as string)),
  measure('new texts: cache on, constants vary', COLD_COUNT, (i) => {
    counter++;
    check(warm, (MIX[i % statementsPerPass] as string).replaceAll('$n', String(counter)));
  }),
  measure('cached: cache on, same 20 texts', CACHED_COUNT, (i) => check(warm, fixed[i % statementsPerPass] as string)),
];

const baseline = (results[0] as { rate: number }).rate;
console.log(`SQL classification, ${statementsPerPass} statement mix, Node ${process.version}, median of ${REPEATS}\n`);
console.log('| condition | statements | seconds | statements/s | µs/statement | vs bare parse |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const { label, rate, seconds } of results) {
  const count = Math.round(rate * seconds);
  console.log(
    `| ${label} | ${count.toLocaleString('en-US')} | ${seconds.toFixed(3)} | ${Math.round(rate).toLocaleString('en-US')} | ${(1e6 / rate).toFixed(2)} | ${(rate / baseline).toFixed(2)}× |`,
  );
}
