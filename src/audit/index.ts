export {};
export { canonicalize, encodeCanonical, decodeCanonical, MAX_JSON_DEPTH } from './canonical.js';
export type { JsonValue, JsonObject, DecodeResult } from './canonical.js';
export {
  RECORD_KINDS,
  RECORD_VERSION,
  MAX_RECORD_BYTES,
  TRUNCATED_PREFIX_BYTES,
  BYTES_MARKER,
  isRecordKind,
  sealRecord,
  validateEvent,
  parseRecord,
  bytesFromValue,
  isTruncatedValue,
} from './record.js';
export type {
  RecordKind,
  AuditPrincipal,
  AuditDecision,
  AuditValue,
  AuditEvent,
  AuditRecord,
  SealOptions,
  SealedRecord,
  TruncatedValue,
  RecordProblem,
  ParseRecordResult,
} from './record.js';
export {
  HASH_SIZE,
  leafHash,
  nodeHash,
  emptyRoot,
  CompactRange,
  rootFromLeaves,
  subtreeHash,
  inclusionProofRanges,
  consistencyProofRanges,
  inclusionProof,
  consistencyProof,
  ProofBuilder,
  rootFromInclusionProof,
  verifyInclusion,
  verifyConsistency,
} from './merkle.js';
export type { LeafRange, LeafSource, CompactRangeJSON, NodeHasher } from './merkle.js';
export { GENESIS_PREFIX, genesisPrev } from './genesis.js';
export {
  MAX_NOTE_SIGNATURES,
  isValidKeyName,
  noteKeyId,
  generateSignerKey,
  parseVerifierKey,
  signNote,
  openNote,
  formatCheckpointBody,
  parseCheckpointBody,
  signCheckpoint,
  openCheckpoint,
} from './note.js';
// Node's crypto signs: see native-signing.ts.
export { parseSignerKey } from './native-signing.js';
export type {
  NoteSigner,
  NoteVerifier,
  NoteSignature,
  OpenNoteResult,
  NoteProblem,
  Checkpoint,
  ParseCheckpointResult,
  OpenCheckpointResult,
} from './note.js';
export { bytesToHex, hexToBytesStrict, encodeBase64, decodeBase64, equalBytes } from './bytes.js';
export { TLOG_PROOF_HEADER, formatProof, parseProof, verifyProofBundle } from './proof.js';
export type { ProofBundle, FormatProofInput, ParseProofResult, ProofProblem, VerifyProofResult } from './proof.js';
export { createChainVerifier } from './verify-chain.js';
export type { ChainProblem, ChainFailure, ChainStep, ChainVerifierState, ChainVerifier, ChainVerifierOptions } from './verify-chain.js';
export { auditPrincipal } from './principal.js';
export { openFileStore } from './store/file-store.js';
export type {
  AuditStore,
  AuditStoreState,
  AuditStoreStatus,
  AuditStoreError,
  AuditStoreObserver,
  AppendOptions,
  AppendResult,
  SignedCheckpointNote,
  Durability,
  FileStoreOptions,
} from './store/types.js';
export type { StoreFs, StoreFile, FileIdentity } from './store/file-io.js';
export { verifyLog } from './verify-log.js';
export type { VerifyLogOptions, VerifyLogResult, LogVerified, LogVerifyFailure, VerifyProblem, VerifiedCheckpoint, TornTail } from './verify-log.js';
export { proveInclusion } from './prove.js';
export type { ProveOptions, InclusionProof } from './prove.js';
export { compileFilter, matchesRecord } from './query-filter.js';
export type { RecordFilter, CompiledFilter } from './query-filter.js';
export { openAuditIndex, queryLog, listSessions, indexSecretFromSignerKey } from './query-index.js';
export type { AuditIndex, AuditIndexOptions, QueryOptions, QueryHit, QueryPage, SessionQueryOptions, SessionSummary, SessionPage } from './query-index.js';
export { OCSF_VERSION, toOcsf } from './ocsf.js';
export type { OcsfOptions } from './ocsf.js';
export { EXPORT_FORMATS, exportLog } from './export.js';
export type { ExportFormat, ExportOptions } from './export.js';
