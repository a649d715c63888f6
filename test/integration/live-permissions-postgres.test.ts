/**
 * Live permissions on postgres: the shared suite (test/support/live-permissions-suite.ts), for the
 * default user model and for a custom one (accounts_uuid.UuidUser).
 */
import { defineLivePermissionsSuite } from '../support/live-permissions-suite.js';

for (const userModel of ['auth.User', 'accounts_uuid.UuidUser'] as const) {
  defineLivePermissionsSuite({ dialect: 'postgres', userModel, redisDb: 11 });
}
