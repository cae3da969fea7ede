// VMBusTransport: see docs/ARCHITECTURE.md
