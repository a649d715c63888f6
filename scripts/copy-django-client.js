#!/usr/bin/env node
// Copies the browser client as `npm run build` compiles it (dist/client/*.js) into the Django
// package's static files, where {% sidecast_connect %} loads it as static/sidecast/index.js. Part
// of the build, so the package ships the client this checkout builds;
// test/unit/django-client-static.test.ts fails when the committed copy differs from a fresh build.
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const from = join(root, 'dist', 'client');
const to = join(root, 'django-sidecast', 'src', 'django_sidecast', 'static', 'sidecast');

mkdirSync(to, { recursive: true });
const modules = readdirSync(from).filter((name) => name.endsWith('.js'));
for (const name of readdirSync(to)) if (!modules.includes(name)) rmSync(join(to, name));
for (const name of modules) copyFileSync(join(from, name), join(to, name));
