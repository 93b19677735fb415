#!/usr/bin/env bash
# The demo: installs fink-client, starts the embedded Kafka broker, replays the bundled real
# ZTF alerts into two topics in Fink's wire format, consumes them with AlertConsumer over
# SASL/SCRAM, prints them as a table, and stops the broker.
set -euo pipefail
cd "$(dirname "$0")/.."
bin/bootstrap.sh
exec .venv/bin/finkctl demo "$@"
