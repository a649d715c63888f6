/**
 * django-sesame's settings (SESAME_*), which the sesame authenticator mirrors with their Django
 * meaning and defaults, and what they ask of the user model.
 */
import type { DjangoSettings } from '../../django/settings.js';
import type { UserLookup } from '../../django/user-model.js';
import type { SessionSettings } from '../session/settings.js';
import type { SimpleJwtSettings } from '../simplejwt/settings.js';

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

/**
 * Django's settings with those of each authenticator's app beside them (django-sesame's,
 * sessions', SimpleJWT's), as the project's settings module holds them all; loadDjangoSettings
 * reads them together, so one object reaches every authenticator.
 */
export interface DjangoSesameSettings extends DjangoSettings {
  readonly sesame: SesameSettings;
  /** SESSION_* and AUTHENTICATION_BACKENDS; Django's defaults when absent. */
  readonly session?: SessionSettings;
  /** SIMPLE_JWT_*; SimpleJWT's defaults when absent. */
  readonly simpleJwt?: SimpleJwtSettings;
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

/** How tokens name users (SESAME_PRIMARY_KEY_FIELD) and what the settings need of the model. */
export function sesameUserLookup(sesame: SesameSettings): UserLookup {
  return Object.freeze({
    field: sesame.primaryKeyField,
    fieldSetting: 'SESAME_PRIMARY_KEY_FIELD',
    // django-sesame raises ImproperlyConfigured at import when the model has no email.
    emailNeededBy: sesame.invalidateOnEmailChange ? 'SESAME_INVALIDATE_ON_EMAIL_CHANGE' : null,
    // An explicit SESAME_PACKER decides the bytes; the value is then bound as text.
    untypedKeyType: sesame.packer === null ? null : 'CharField',
    untypedKeyRefusal: 'no django-sesame packer handles: set SESAME_PACKER',
  });
}
