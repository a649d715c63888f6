/**
 * The one config loader. Flags win over SIDECAST_* environment variables, which win over the
 * defaults in OPTIONS; Django's own settings come from variables with their Django names. Values
 * are validated once, at start, and frozen.
 */
export * from './config/options.js';
export * from './config/args.js';
export * from './config/django-env.js';
