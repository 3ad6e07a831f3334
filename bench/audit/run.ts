import { benchAppend, formatAppendResult } from './append.js';
import { benchRecover, formatRecoverResult } from './recover.js';
import { benchVerify, formatVerifyResult } from './verify.js';

// The audit bars of DESIGN.md §4, each printed as its own table.
console.log('## Audit append\n');
console.log(formatAppendResult(await benchAppend({ records: 200_000, writers: 64 })));
console.log('\n## Audit recovery\n');
console.log(formatRecoverResult(await benchRecover({ records: 1_000_000, unsigned: 50_000 })));
console.log('\n## Audit verify and query\n');
console.log(formatVerifyResult(await benchVerify({ sizes: [250_000, 1_000_000], users: 1000 })));
