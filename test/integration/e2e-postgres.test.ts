/**
 * End to end on postgres: the shared suite for the default user model and for custom user models
 * whose primary keys are a UUID and a BigAutoField.
 */
import { defineEndToEndSuite } from '../support/e2e-suite.js';

for (const userModel of ['auth.User', 'accounts_uuid.UuidUser', 'accounts_big.BigUser'] as const) {
  defineEndToEndSuite({ dialect: 'postgres', userModel });
}
