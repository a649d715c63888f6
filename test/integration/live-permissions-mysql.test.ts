/**
 * Live permissions on mysql: the shared suite (test/support/live-permissions-suite.ts), for the
 * default user model and for a custom one (accounts_big.BigUser).
 */
import { defineLivePermissionsSuite } from '../support/live-permissions-suite.js';

for (const userModel of ['auth.User', 'accounts_big.BigUser'] as const) {
  defineLivePermissionsSuite({ dialect: 'mysql', userModel, redisDb: 12 });
}
