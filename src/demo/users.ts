/** A person of the demo IdP. Demo only: the password is the user name, and shown everywhere. */
export interface DemoUser {
  /** What the login form accepts besides the email; also the password. */
  readonly username: string;
  readonly email: string;
  readonly password: string;
  /** Display name (`name` claim). */
  readonly name: string;
  /** The `groups` claim, which `config/demo.yaml` grants roles to. */
  readonly groups: readonly string[];
  /** What the demo's policy lets this person do, in one line. */
  readonly can: string;
}

/** The three demo users of DESIGN.md §3 "The demo". */
export const DEMO_USERS: readonly DemoUser[] = Object.freeze([
  Object.freeze({
    username: 'alice',
    email: 'alice@example.com',
    password: 'alice',
    name: 'Alice Engineer',
    groups: Object.freeze(['engineering']),
    can: 'uses the app; reads the shop database',
  }),
  Object.freeze({
    username: 'bob',
    email: 'bob@example.com',
    password: 'bob',
    name: 'Bob DBA',
    groups: Object.freeze(['dba']),
    can: 'reads and writes the shop database, but changes no schema (no DDL)',
  }),
  Object.freeze({
    username: 'carol',
    email: 'carol@example.com',
    password: 'carol',
    name: 'Carol Security',
    groups: Object.freeze(['security']),
    can: 'reviews and exports the audit log at /audit; views the app read-only',
  }),
]);
