// The TimescaleDB test server: PGlite (PostgreSQL 17 in WASM) with the
// TimescaleDB extension, served over the PostgreSQL wire protocol by
// pglite-socket on 127.0.0.1. One client connection at a time.
//
// usage: node timescale-server.mjs PORT DATADIR
// Prints "ready" on stdout once it accepts connections; exits on SIGTERM/SIGINT.
import { PGlite } from '@electric-sql/pglite';
import { timescaledb } from '@electric-sql/pglite/timescaledb';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

const port = Number(process.argv[2] || 55433);
const dataDir = process.argv[3];
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    console.error(`timescale-server: bad port ${process.argv[2]}`);
    process.exit(2);
}

const db = await PGlite.create({ dataDir, extensions: { timescaledb } });
await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb');
const server = new PGLiteSocketServer({ db, port, host: '127.0.0.1' });
server.addEventListener?.('error', (e) => console.error('timescale-server: error', e?.detail ?? e));
await server.start();
console.log('ready');

let stopping = false;
async function stop() {
    if (stopping) return;
    stopping = true;
    try {
        await server.stop();
        await db.close();
    } finally {
        process.exit(0);
    }
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
