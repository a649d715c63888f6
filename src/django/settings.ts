/**
 * Django's own settings that sidecast must mirror to read users the way Django does, read from
 * environment variables that carry their Django names (see config.ts). Values have Django's
 * meaning and defaults. The settings of an app behind an authenticator (django-sesame's
 * SESAME_*) belong to that authenticator, not here: this module reads users for all of them.
 */
export interface DjangoSettings {
  /** SECRET_KEY: never logged, never accepted as a flag. */
  readonly secretKey: string;
  readonly secretKeyFallbacks: readonly string[];
  /** AUTH_USER_MODEL as "app_label.ModelName". */
  readonly authUserModel: string;
  /** USE_TZ: Django 5+ default is true; decides how last_login is formatted. */
  readonly useTz: boolean;
  /**
   * TIME_ZONE. Only read when USE_TZ is false: Django then keeps last_login as naive local time
   * in this zone (on PostgreSQL, sidecast converts to it). Default "UTC".
   */
  readonly timeZone?: string;
  /** The user model's Meta.db_table, when the project sets one (else "<app_label>_<model>"). */
  readonly userTable?: string | null;
  /** The user model's USERNAME_FIELD (default: "username", else "email", else the pk). */
  readonly usernameField?: string | null;
  /** The user model's EMAIL_FIELD (default "email", when that column exists). */
  readonly emailField?: string | null;
}
