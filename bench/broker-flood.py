#!/usr/bin/env python3
"""Legitimate latency while hostile connections flood a broker (issue 18.1).

Driven by bench/broker-flood.sh; loopback only. Opens HOSTILE connections
(thirds: silent TCP, a login body trickling one byte per second, the h2c
preface and then nothing) from the 127.0.0.x addresses in HOSTILE_FROM,
ramped over RAMP seconds and each held until the broker closes it or the
run ends. Meanwhile one legitimate client on 127.0.0.1 sends GET /healthz
on a fresh connection every 20 ms and records the latency; a request that
fails or takes longer than 5 s counts as failed. Prints one key=value line
per figure. Stops by itself after RAMP + DURATION seconds.
"""
import asyncio
import os
import sys
import time

HOST, PORT = "127.0.0.1", int(sys.argv[1])
HOSTILE = int(os.environ.get("HOSTILE", "5000"))
FROM = os.environ.get("HOSTILE_FROM", "127.0.0.2").split(",")
RAMP = float(os.environ.get("RAMP", "2"))
DURATION = float(os.environ.get("DURATION_S", "15"))
H2C = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])

stats = {"attempted": 0, "connect_failed": 0, "held_now": 0, "held_max": 0,
         "closed_by_broker": 0}


async def hostile(i, stop):
    kind = i % 3
    src = FROM[i % len(FROM)]
    stats["attempted"] += 1
    try:
        r, w = await asyncio.wait_for(
            asyncio.open_connection(HOST, PORT, local_addr=(src, 0)), 5)
    except (OSError, asyncio.TimeoutError):
        stats["connect_failed"] += 1
        return
    stats["held_now"] += 1
    stats["held_max"] = max(stats["held_max"], stats["held_now"])

    async def feed():
        try:
            if kind == 1:
                w.write(b"POST /v1/login/start HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n")
                while True:
                    await w.drain()
                    await asyncio.sleep(1)
                    w.write(b" ")
            elif kind == 2:
                w.write(H2C)
                await w.drain()
        except OSError:
            pass

    feeder = asyncio.ensure_future(feed())
    reader = asyncio.ensure_future(r.read(-1))
    done, _ = await asyncio.wait({reader, stop}, return_when=asyncio.FIRST_COMPLETED)
    if reader in done:
        stats["closed_by_broker"] += 1
    feeder.cancel()
    reader.cancel()
    stats["held_now"] -= 1
    w.transport.abort()


async def healthz():
    t = time.perf_counter()
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(HOST, PORT), 5)
        w.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await w.drain()
        data = await asyncio.wait_for(r.read(-1), 5)
        w.transport.abort()
        ok = data.startswith(b"HTTP/1.1 200")
    except (OSError, asyncio.TimeoutError):
        ok = False
    return ok, time.perf_counter() - t


async def legit(until, lat, fails):
    while time.monotonic() < until:
        ok, dt = await healthz()
        if ok:
            lat.append(dt)
        else:
            fails.append(dt)
        await asyncio.sleep(0.02)


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000


async def main():
    base, base_fail = [], []
    await legit(time.monotonic() + 3, base, base_fail)
    stop = asyncio.get_running_loop().create_future()
    tasks = []
    t0 = time.monotonic()
    lat, fails = [], []
    legit_task = asyncio.ensure_future(legit(t0 + RAMP + DURATION, lat, fails))
    for i in range(HOSTILE):
        tasks.append(asyncio.ensure_future(hostile(i, stop)))
        await asyncio.sleep(RAMP / HOSTILE)
    await legit_task
    held_at_end = stats["held_now"]
    stop.set_result(None)
    await asyncio.wait(tasks, timeout=10)
    print(f"baseline_requests={len(base)} baseline_failed={len(base_fail)} "
          f"baseline_p50_ms={pct(base, 50):.2f} baseline_p99_ms={pct(base, 99):.2f}")
    print(f"hostile_attempted={stats['attempted']} hostile_connect_failed={stats['connect_failed']} "
          f"hostile_held_max={stats['held_max']} hostile_held_at_end={held_at_end} "
          f"hostile_closed_by_broker={stats['closed_by_broker']}")
    print(f"legit_requests={len(lat)} legit_failed={len(fails)} "
          f"legit_p50_ms={pct(lat, 50):.2f} legit_p99_ms={pct(lat, 99):.2f} "
          f"legit_max_ms={(max(lat) * 1000 if lat else float('nan')):.2f}")


asyncio.run(main())
