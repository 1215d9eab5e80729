// The TimescaleDB test server: PGlite (PostgreSQL 17 in WASM) with the
// TimescaleDB extension, served over the PostgreSQL wire protocol by
// pglite-socket on 127.0.0.1. One client connection at a time.
//
// usage: node timescale-server.mjs PORT DATADIR
// Prints "ready" on stdout once it accepts connections; exits on SIGTERM/SIGINT.
import { PGlite } from '@electric-sql/pglite';
import { timescaledb } from '@electric-sql/pglite/timescaledb';
import { PGLiteSocketHandler, PGLiteSocketServer } from '@electric-sql/pglite-socket';

// pglite-socket 0.0.19 hands each TCP chunk to PGlite as it arrives; a
// protocol message larger than one chunk (about 64 KiB, e.g. a 4,000-row
// batched upsert) then reaches PGlite cut in two and crashes the WASM
// backend. Reassemble whole messages first: startup-phase messages are
// [int32 length][body]; after the StartupMessage every message is
// [type byte][int32 length][body].
const origHandleData = PGLiteSocketHandler.prototype.handleData;
const origAttach = PGLiteSocketHandler.prototype.attach;
PGLiteSocketHandler.prototype.attach = function (socket) {
    this._pending = Buffer.alloc(0);
    this._startup = true;
    return origAttach.call(this, socket);
};
PGLiteSocketHandler.prototype.handleData = function (chunk) {
    let buf = this._pending && this._pending.length ? Buffer.concat([this._pending, chunk]) : chunk;
    let off = 0;
    const whole = [];
    for (;;) {
        if (this._startup) {
            if (buf.length - off < 8) break;
            const len = buf.readUInt32BE(off);
            if (buf.length - off < len) break;
            const code = buf.readUInt32BE(off + 4);
            if (code === 80877103 || code === 80877104) {
                // SSLRequest / GSSENCRequest: answer "not supported" like a
                // server without TLS, so clients with sslmode=prefer go on
                this.socket?.write(Buffer.from('N'));
            } else {
                whole.push(buf.subarray(off, off + len));
                this._startup = false;
            }
            off += len;
        } else {
            if (buf.length - off < 5) break;
            const len = buf.readUInt32BE(off + 1);
            if (buf.length - off < 1 + len) break;
            whole.push(buf.subarray(off, off + 1 + len));
            off += 1 + len;
        }
    }
    this._pending = Buffer.from(buf.subarray(off));
    if (whole.length === 0) return Promise.resolve(0);
    return origHandleData.call(this, Buffer.concat(whole));
};

const port = Number(process.argv[2] || 25433);
const dataDir = process.argv[3];
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    console.error(`timescale-server: bad port ${process.argv[2]}`);
    process.exit(2);
}

// A client that resets its connection (for example one that gave up waiting
// in pglite-socket's queue) makes pglite-socket reject a promise nobody
// handles, which would kill the server. A real server shrugs that off: log it
// and keep serving.
process.on('unhandledRejection', (e) => console.error('timescale-server: client error:', e?.code ?? e));
process.on('uncaughtException', (e) => {
    if (e && (e.code === 'ECONNRESET' || e.code === 'EPIPE')) {
        console.error('timescale-server: client error:', e.code);
        return;
    }
    console.error('timescale-server: fatal:', e);
    process.exit(1);
});

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
