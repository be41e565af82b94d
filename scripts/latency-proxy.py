#!/usr/bin/env python3
"""A TCP proxy on loopback that adds a fixed delay to every request, as a real region adds
to each round trip from a CI runner.

Usage: latency-proxy.py LISTEN_PORT UPSTREAM_HOST:PORT DELAY_MS

The delay is applied once per request turn: the first bytes a client sends after the
server has answered (or on a new connection) wait DELAY_MS before being forwarded; the
rest of a request body streams through at once. Prints "ready" when listening.
"""
import asyncio
import sys


async def pipe(reader, writer, delay, turn):
    """Copy reader → writer; if `turn` is a dict, delay the first chunk of each turn."""
    try:
        while True:
            data = await reader.read(256 * 1024)
            if not data:
                break
            if turn is not None:
                if turn["new"]:
                    turn["new"] = False
                    await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def handle(client_reader, client_writer, upstream, delay):
    host, port = upstream
    try:
        server_reader, server_writer = await asyncio.open_connection(host, port)
    except OSError:
        client_writer.close()
        return
    turn = {"new": True}

    async def answers():
        # Server → client: any answer ends the current request turn.
        try:
            while True:
                data = await server_reader.read(256 * 1024)
                if not data:
                    break
                turn["new"] = True
                client_writer.write(data)
                await client_writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            try:
                client_writer.close()
            except Exception:
                pass

    await asyncio.gather(pipe(client_reader, server_writer, delay, turn), answers())


async def main():
    listen = int(sys.argv[1])
    host, port = sys.argv[2].rsplit(":", 1)
    delay = int(sys.argv[3]) / 1000.0
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, (host, int(port)), delay), "127.0.0.1", listen
    )
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
