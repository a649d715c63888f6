/**
 * The Django and django-sesame settings sidecast must mirror, read from environment variables
 * that carry their Django names (see config.ts). Values have Django's meaning and defaults.
 */
export interface SesameSettings {
  /** SESAME_MAX_AGE in seconds; null means tokens carry no timestamp and never expire. */
  readonly maxAge: number | null;
  readonly oneTime: boolean;
  readonly invalidateOnPasswordChange: boolean;
  readonly invalidateOnEmailChange: boolean;
  /** SESAME_PACKER dotted path exactly as configured, or null for the automatic choice. */
  readonly packer: string | null;
  /** SESAME_PRIMARY_KEY_FIELD; "pk" means the model's primary key. */
  readonly primaryKeyField: string;
  readonly key: string;
  readonly signatureSize: number;
}

export interface DjangoSettings {
  /** SECRET_KEY: never logged, never accepted as a flag. */
  readonly secretKey: string;
  readonly secretKeyFallbacks: readonly string[];
  /** AUTH_USER_MODEL as "app_label.ModelName". */
  readonly authUserModel: string;
  /** USE_TZ: Django 5+ default is true; decides how last_login is formatted (one-time tokens). */
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
  readonly sesame: SesameSettings;
}

export const DEFAULT_SESAME_SETTINGS: SesameSettings = Object.freeze({
  maxAge: null,
  oneTime: false,
  invalidateOnPasswordChange: true,
  invalidateOnEmailChange: false,
  packer: null,
  primaryKeyField: 'pk',
  key: '',
  signatureSize: 10,
});
