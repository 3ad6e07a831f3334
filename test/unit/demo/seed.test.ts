import { describe, expect, it } from 'vitest';
import { SHOP_TABLES } from '../../../src/demo/index.js';
import { generateShopRows, insertStatement } from '../../../src/demo/seed.js';

const now = new Date('2031-06-01T12:00:00Z');

function column(tables: ReturnType<typeof generateShopRows>, table: string, name: string): readonly (string | number | null)[] {
  const found = tables.find((candidate) => candidate.table === table)?.columns.find((candidate) => candidate.name === name);
  if (found === undefined) throw new Error(`no ${table}.${name}`);
  return found.values;
}

describe('the shop seed data', () => {
  const tables = generateShopRows(now);

  it('is the same on every machine for the same moment', () => {
    expect(generateShopRows(now)).toEqual(tables);
    expect(tables.map((table) => table.table)).toEqual([...SHOP_TABLES]);
  });

  it('keeps every foreign key inside the rows it creates', () => {
    const count = (table: string) => column(tables, table, tables.find((t) => t.table === table)?.columns[0]?.name ?? '').length;
    const within = (values: readonly unknown[], max: number) => values.every((value) => typeof value === 'number' && value >= 1 && value <= max);
    expect(within(column(tables, 'orders', 'customer_id'), count('customers'))).toBe(true);
    expect(within(column(tables, 'order_items', 'order_id'), count('orders'))).toBe(true);
    expect(within(column(tables, 'order_items', 'product_id'), count('products'))).toBe(true);
    expect(within(column(tables, 'payments', 'order_id'), count('orders'))).toBe(true);
  });

  it('has unique customer emails, past timestamps and totals that add up', () => {
    const emails = column(tables, 'customers', 'email');
    expect(new Set(emails).size).toBe(emails.length);
    for (const stamp of [...column(tables, 'orders', 'ordered_at'), ...column(tables, 'payments', 'paid_at')]) {
      expect(Date.parse(String(stamp))).toBeLessThanOrEqual(now.getTime());
    }
    const cents = (value: unknown) => Math.round(Number(value) * 100);
    const sums = new Map<number, number>();
    const orderIds = column(tables, 'order_items', 'order_id');
    const quantities = column(tables, 'order_items', 'quantity');
    const prices = column(tables, 'order_items', 'unit_price');
    orderIds.forEach((id, i) => sums.set(Number(id), (sums.get(Number(id)) ?? 0) + Number(quantities[i]) * cents(prices[i])));
    column(tables, 'orders', 'total').forEach((total, i) => expect(cents(total)).toBe(sums.get(i + 1)));
  });

  it('inserts with explicit ids and one typed array per column', () => {
    const customers = tables.find((table) => table.table === 'customers');
    if (customers === undefined) throw new Error('no customers');
    const insert = insertStatement(customers);
    expect(insert.text).toBe(
      'INSERT INTO customers (id, full_name, email, country, city, created_at) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::char(2)[], $5::text[], $6::timestamptz[])',
    );
    expect(insert.values[0]).toEqual(Array.from({ length: customers.columns[0]?.values.length ?? 0 }, (_, i) => i + 1));
  });
});
