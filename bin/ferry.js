#!/usr/bin/env node
// The `ferry` command. Built from src/ by `npm run build` (npm install runs it through "prepare").
import { main } from '../dist/app/main.js';

process.exitCode = await main(process.argv);
